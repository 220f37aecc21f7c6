// The job list and each job's latest execution, kept current from the event stream.

import { api } from "./api.js";
import { onEvent, onResync } from "./events.js";

/** How many requests for latest executions may be in flight at once. */
const PARALLEL = 4;

export const store = {
  /** [{job_id, input_spec, error?}], sorted by id. */
  jobs: [],
  byId: new Map(),
  /** job_id -> that job's newest execution, or null when it never ran. */
  last: new Map(),
  loaded: false,
  error: null,
};

const listeners = new Set();
let generation = 0;

/** `fn(change)`: change is {kind: "jobs"} or {kind: "last", jobId}. */
export function subscribe(fn, signal) {
  listeners.add(fn);
  signal?.addEventListener("abort", () => listeners.delete(fn), { once: true });
}

function notify(change) {
  for (const fn of [...listeners]) {
    try {
      fn(change);
    } catch (error) {
      console.error(error);
    }
  }
}

export async function loadJobs() {
  const mine = ++generation;
  try {
    const jobs = await api.jobs();
    if (mine !== generation) return;
    store.jobs = Array.isArray(jobs) ? jobs : [];
    store.byId = new Map(store.jobs.map((job) => [job.job_id, job]));
    for (const id of [...store.last.keys()]) if (!store.byId.has(id)) store.last.delete(id);
    store.loaded = true;
    store.error = null;
  } catch (error) {
    if (mine !== generation) return;
    store.error = error;
    notify({ kind: "jobs" });
    return;
  }
  notify({ kind: "jobs" });
  const queue = store.jobs.map((job) => job.job_id);
  const worker = async () => {
    while (queue.length && mine === generation) await refreshLast(queue.shift());
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

const pending = new Map();

/** Fetches a job's newest execution; calls made while one is in flight are merged. */
export function refreshLast(jobId) {
  const running = pending.get(jobId);
  if (running) {
    running.again = true;
    return running.promise;
  }
  const entry = { again: false };
  entry.promise = (async () => {
    do {
      entry.again = false;
      try {
        const [newest] = await api.executions(jobId, { limit: 1 });
        store.last.set(jobId, newest ?? null);
        notify({ kind: "last", jobId });
      } catch (error) {
        if (error.status === 404) store.last.delete(jobId);
      }
    } while (entry.again);
    pending.delete(jobId);
  })();
  pending.set(jobId, entry);
  return entry.promise;
}

export function startStore() {
  onEvent((event) => {
    const { job_id: jobId, execution_id: executionId, status } = event?.payload ?? {};
    if (event?.id !== "job_execution_status_changed" || !jobId) return;
    if (!store.byId.has(jobId)) {
      // A job this page has not seen yet (added since): the list is stale.
      loadJobs();
      return;
    }
    // Show the new status at once; the full record (times, result) follows.
    const last = store.last.get(jobId);
    if (!last || Number(executionId) >= Number(last.execution_id)) {
      const placeholder = last && last.execution_id === executionId ? { ...last, status }
        : { execution_id: executionId, status, status_history: [{ timestamp: new Date().toISOString(), status }], result: null, input_values: {} };
      store.last.set(jobId, placeholder);
      notify({ kind: "last", jobId });
    }
    refreshLast(jobId);
  });
  onResync(() => loadJobs());
}
