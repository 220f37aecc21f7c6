// The overview: every job's latest run, most recent first.
//
// The order is kept sorted as runs come in (a new run moves its job to the top), and
// only the first rows are in the page ("Show more" adds more): a change redraws the
// rows of the jobs it concerns and moves rows that changed places, nothing else.

import { ago, badge, errorBox, executionTimes, fill, formatDate, h, jobHref, setTitle, triggerMark, until } from "../dom.js";
import { countedAs, loadJobs, nextRuns, store, subscribe } from "../store.js";
import { runDuration } from "./common.js";

/** Rows shown at first, and added by "Show more". */
const PAGE = 100;
/** How many of the next scheduled runs the overview lists. */
const NEXT_RUNS = 5;

export function homePage(main, _route, signal) {
  setTitle();
  const summary = h("p", { class: "summary muted" });
  const body = h("div");
  const nextList = h("ol", { class: "next-runs" });
  const nextCard = h("section", { class: "card", "aria-labelledby": "next-title", hidden: true },
    h("h2", { id: "next-title" }, "Next scheduled runs"), nextList);
  fill(main,
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Overview"), h("span", { class: "grow" }), summary),
    nextCard,
    h("section", { class: "card", "aria-labelledby": "latest-title" }, h("h2", { id: "latest-title" }, "Latest runs"), body));

  /** The soonest scheduled runs (none from a daemon without schedules). */
  function showNextRuns() {
    const soon = store.loaded ? nextRuns(NEXT_RUNS) : [];
    nextCard.hidden = soon.length === 0;
    fill(nextList, soon.map(({ job, at }) => h("li", { dataset: { jobId: job.job_id } },
      h("a", { href: jobHref(job.job_id) }, job.job_id), " ", until(at),
      h("span", { class: "muted" }, ` · ${formatDate(at)}`),
      job.schedule?.description ? h("span", { class: "muted" }, ` · ${job.schedule.description}`) : null)));
  }

  /** Job ids, most recent run first (never run last, by id). */
  let order = [];
  /** job_id -> when its latest run was queued (ms; -Infinity when it never ran). */
  const at = new Map();
  /** job_id -> "running", "failed" or null, as counted in `totals`. */
  const counted = new Map();
  const totals = { running: 0, failed: 0 };
  /** job_id -> its row, for the rows in the page. */
  let shownRows = new Map();
  let limit = PAGE;
  let tbody = null;
  const more = h("button", { type: "button", class: "btn more", onclick: () => { limit += PAGE; place(); } }, "Show more");

  const queuedAt = (jobId) => {
    const last = store.last.get(jobId);
    const times = last ? executionTimes(last) : null;
    return times && Number.isFinite(times.queued) ? times.queued : -Infinity;
  };
  const before = (a, b) => (at.get(b) - at.get(a)) || (a < b ? -1 : a > b ? 1 : 0);

  function count(jobId) {
    const as = countedAs(store.last.get(jobId));
    const was = counted.get(jobId);
    if (as === was) return;
    if (was) totals[was]--;
    if (as) totals[as]++;
    counted.set(jobId, as);
  }

  function showSummary() {
    const n = store.jobs.length;
    summary.textContent = [`${n} job${n === 1 ? "" : "s"}`, totals.running && `${totals.running} running`, totals.failed && `${totals.failed} failed last time`].filter(Boolean).join(" · ");
  }

  /** Everything anew: after the job list was (re)loaded. */
  function renderAll() {
    if (signal.aborted) return;
    shownRows = new Map();
    tbody = null;
    if (store.error && !store.loaded) {
      fill(body, errorBox(store.error, () => loadJobs()));
      return;
    }
    if (!store.loaded) {
      fill(body, h("p", { class: "muted" }, "Loading…"));
      return;
    }
    if (!store.jobs.length) {
      fill(body, h("p", { class: "muted" }, "No jobs yet: every executable file under ", h("code", null, "config/jobs/"), " in servitord's working directory is a job."));
      summary.textContent = "";
      return;
    }
    at.clear();
    counted.clear();
    totals.running = 0;
    totals.failed = 0;
    for (const job of store.jobs) {
      at.set(job.job_id, queuedAt(job.job_id));
      count(job.job_id);
    }
    order = store.jobs.map((job) => job.job_id).sort(before);
    showSummary();
    tbody = h("tbody");
    fill(body, h("table", { class: "executions overview" },
      h("thead", null, h("tr", null,
        h("th", { scope: "col" }, "Job"), h("th", { scope: "col" }, "Last run"), h("th", { scope: "col" }, "Started"), h("th", { scope: "col" }, "Duration"))),
      tbody), more);
    place();
  }

  /** Puts the first `limit` jobs' rows in order, reusing the rows already there. */
  function place() {
    if (!tbody) return;
    const wanted = order.slice(0, limit);
    const keep = new Map();
    let next = tbody.firstChild;
    for (const jobId of wanted) {
      const tr = shownRows.get(jobId) ?? row(jobId);
      keep.set(jobId, tr);
      if (tr === next) next = next.nextSibling;
      else tbody.insertBefore(tr, next);
    }
    for (const [jobId, tr] of shownRows) if (!keep.has(jobId)) tr.remove();
    shownRows = keep;
    more.hidden = order.length <= limit;
    more.textContent = `Show more (${order.length - limit} not shown)`;
  }

  /** Applies changed latest executions: their rows, their places, the counts. */
  function applyChanges(jobIds) {
    if (!tbody) return;
    let moved = false;
    for (const jobId of jobIds) {
      if (!store.byId.has(jobId)) continue;
      count(jobId);
      const when = queuedAt(jobId);
      if (when !== at.get(jobId)) {
        // Out of the order, then back in where it now belongs (a binary search).
        order.splice(order.indexOf(jobId), 1);
        at.set(jobId, when);
        let lo = 0;
        let hi = order.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (before(order[mid], jobId) < 0) lo = mid + 1;
          else hi = mid;
        }
        order.splice(lo, 0, jobId);
        moved = true;
      }
      const old = shownRows.get(jobId);
      if (old) {
        const tr = row(jobId);
        old.replaceWith(tr);
        shownRows.set(jobId, tr);
      }
    }
    if (moved) place();
    showSummary();
  }

  subscribe((change) => {
    if (signal.aborted) return;
    if (change.kind === "jobs") {
      renderAll();
      showNextRuns();
    } else if (change.kind === "last") applyChanges(change.jobIds);
    else if (change.kind === "job") showNextRuns();
  }, signal);
  renderAll();
  showNextRuns();
}

function row(jobId) {
  const job = store.byId.get(jobId);
  const last = store.last.get(jobId);
  const times = last ? executionTimes(last) : null;
  return h("tr", { dataset: { jobId, status: last === undefined ? "loading" : last?.status ?? "none" } },
    h("td", null, h("a", { class: "row-link", href: jobHref(jobId) }, jobId), job?.error ? h("span", { class: "warn", title: job.error }, " !") : null),
    h("td", null, last === undefined ? h("span", { class: "muted" }, "…") : last ? [badge(last.status), " ", h("a", { href: jobHref(jobId, last.execution_id), class: "muted above" }, `#${last.execution_id}`), triggerMark(jobId, last)] : h("span", { class: "muted" }, "never run")),
    h("td", null, times ? ago(Number.isFinite(times.started) ? times.started : times.queued) : null),
    h("td", null, last ? runDuration(last, times) : null));
}
