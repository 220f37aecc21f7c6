// The job list and each job's latest execution, kept current from the event stream.
//
// One `jobs/get_list` brings every job with its `last_execution`; after that, events
// change the record of the job they name and nothing else. Changes are handed to the
// views once per animation frame, gathered, so that a burst of a thousand runs a
// second costs the page one small update a frame, not one per event.

import { api } from "./api.js";
import { parseTime } from "./dom.js";
import { onEvent, onResync } from "./events.js";

/** How many requests for latest executions may be in flight at once (old daemons). */
const PARALLEL = 4;

export const store = {
  /** [{job_id, input_spec, last_execution, error?}], sorted by id. */
  jobs: [],
  byId: new Map(),
  /**
   * job_id -> that job's newest execution in short ({execution_id, status,
   * created_at, started_at, ended_at, result}), or null when it never ran.
   */
  last: new Map(),
  loaded: false,
  error: null,
};

const listeners = new Set();
let generation = 0;

/**
 * `fn(change)`: change is {kind: "jobs"} (the whole list is new),
 * {kind: "last", jobIds: Set} (those jobs' latest executions changed) or
 * {kind: "job", jobId} (that job's record, its schedule and `next_run`, changed).
 */
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

// ---- changes, gathered per frame ----------------------------------------------

let dirty = new Set();
let frame = 0;

function changed(jobId) {
  dirty.add(jobId);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  const jobIds = dirty;
  dirty = new Set();
  if (jobIds.size) notify({ kind: "last", jobIds });
}

// ---- loading -------------------------------------------------------------------

let loading = null;
let loadAgain = false;
/** Events that arrived while the list was loading: [job_id, execution_id, status]. */
let held = [];

/** Loads the job list; calls made while a load is in flight are merged into one more. */
export function loadJobs() {
  if (loading) {
    loadAgain = true;
    return loading;
  }
  loading = (async () => {
    do {
      loadAgain = false;
      await loadOnce();
    } while (loadAgain);
    loading = null;
    const events = held;
    held = [];
    for (const event of events) apply(...event);
  })();
  return loading;
}

async function loadOnce() {
  const mine = ++generation;
  let jobs;
  try {
    jobs = await api.jobs();
  } catch (error) {
    store.error = error;
    notify({ kind: "jobs" });
    return;
  }
  store.jobs = Array.isArray(jobs) ? jobs : [];
  store.byId = new Map(store.jobs.map((job) => [job.job_id, job]));
  store.last = new Map();
  const missing = [];
  for (const job of store.jobs) {
    if ("last_execution" in job) store.last.set(job.job_id, job.last_execution ?? null);
    else missing.push(job.job_id);
  }
  store.loaded = true;
  store.error = null;
  dirty = new Set();
  notify({ kind: "jobs" });
  // A daemon older than `last_execution`: one request per job, a few at a time.
  const worker = async () => {
    while (missing.length && mine === generation) await fetchLast(missing.shift(), mine);
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

async function fetchLast(jobId, mine) {
  try {
    const [newest] = await api.executions(jobId, { limit: 1 });
    if (mine !== generation || store.last.has(jobId)) return;
    store.last.set(jobId, newest ?? null);
    changed(jobId);
  } catch {
    // Gone meanwhile, or the server is: the next load says which.
  }
}

// ---- events --------------------------------------------------------------------

const ENDED = new Set(["success", "failure", "cancelled", "unknown"]);

/** The job's latest execution after an event about one of its executions. */
function applyStatus(last, executionId, status) {
  const now = new Date().toISOString();
  if (!last || Number(executionId) > Number(last.execution_id)) {
    // A new run: its record is made from the events (times as seen here).
    return {
      execution_id: String(executionId),
      status,
      created_at: now,
      started_at: status === "running" ? now : null,
      ended_at: ENDED.has(status) ? now : null,
      result: null,
    };
  }
  if (String(executionId) !== String(last.execution_id)) return null; // an older run
  // Never backwards: an event older than the record loaded with the list.
  if (ENDED.has(last.status) || (last.status === "running" && status === "created")) return null;
  return {
    ...last,
    status,
    started_at: last.started_at ?? (status === "running" ? now : null),
    ended_at: ENDED.has(status) ? last.ended_at ?? now : null,
  };
}

export function startStore() {
  onEvent((event) => {
    if (event?.id !== "job_execution_status_changed") return;
    const { job_id: jobId, execution_id: executionId, status } = event.payload ?? {};
    if (!jobId || executionId == null || !status) return;
    // The list being loaded may be older than this event: applied after it.
    if (loading) {
      held.push([jobId, executionId, status]);
      return;
    }
    apply(jobId, executionId, status);
  });
  onResync(() => loadJobs());
}

function apply(jobId, executionId, status) {
  if (!store.byId.has(jobId)) {
    // A job this page has not seen yet (added since): the list is stale.
    loadJobs();
    return;
  }
  const next = applyStatus(store.last.get(jobId), executionId, status);
  if (!next) return;
  store.last.set(jobId, next);
  changed(jobId);
  // A scheduled job's next run moves when it runs: its record is fetched again.
  if (store.byId.get(jobId).schedule) refreshJob(jobId);
}

// ---- scheduled jobs' next run ------------------------------------------------------

/** At most one fetch of a job's record this often, however many runs it has. */
const REFRESH_EVERY = 1000;
const stale = new Set();
let refreshTimer = 0;

/** Fetches the job's record (its schedule and `next_run`) again, soon. */
export function refreshJob(jobId) {
  stale.add(jobId);
  if (!refreshTimer) refreshTimer = setTimeout(refreshStale, REFRESH_EVERY);
}

async function refreshStale() {
  const ids = [...stale];
  stale.clear();
  const worker = async () => {
    while (ids.length) {
      const jobId = ids.shift();
      try {
        const fresh = await api.job(jobId);
        const job = store.byId.get(jobId);
        if (!job) continue;
        job.next_run = fresh.next_run ?? null;
        if (fresh.schedule) job.schedule = fresh.schedule;
        else delete job.schedule;
        notify({ kind: "job", jobId });
      } catch {
        // Gone meanwhile, or the server is: the next load says which.
      }
    }
  };
  await Promise.all([worker(), worker()]);
  refreshTimer = stale.size ? setTimeout(refreshStale, REFRESH_EVERY) : 0;
}

/** The soonest scheduled runs: [{job, at (ms)}], at most `count`. */
export function nextRuns(count) {
  const soon = [];
  for (const job of store.jobs) {
    if (typeof job.next_run !== "string" || job.schedule?.paused) continue;
    const at = parseTime(job.next_run);
    if (Number.isFinite(at)) soon.push({ job, at });
  }
  soon.sort((a, b) => a.at - b.at || (a.job.job_id < b.job.job_id ? -1 : 1));
  return soon.slice(0, count);
}

// ---- what the views count --------------------------------------------------------

/** "running" (queued or running), "failed" (failure or unknown) or null, for counts. */
export function countedAs(last) {
  const status = last?.status;
  if (status === "running" || status === "created") return "running";
  if (status === "failure" || status === "unknown") return "failed";
  return null;
}
