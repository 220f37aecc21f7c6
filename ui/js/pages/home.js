// The overview: every job's latest run, most recent first.

import { ago, badge, errorBox, executionTimes, fill, h, jobHref, setTitle } from "../dom.js";
import { loadJobs, store, subscribe } from "../store.js";
import { runDuration } from "./common.js";

export function homePage(main, _route, signal) {
  setTitle();
  const summary = h("p", { class: "summary muted" });
  const body = h("div");
  fill(main,
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Overview"), h("span", { class: "grow" }), summary),
    h("section", { class: "card", "aria-labelledby": "latest-title" }, h("h2", { id: "latest-title" }, "Latest runs"), body));

  let frame = 0;
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(render);
  };

  function render() {
    frame = 0;
    if (signal.aborted) return;
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
    const entries = store.jobs.map((job) => {
      const last = store.last.get(job.job_id);
      const times = last ? executionTimes(last) : null;
      return { job, last, times, at: times && Number.isFinite(times.queued) ? times.queued : -Infinity };
    });
    entries.sort((a, b) => (b.at - a.at) || a.job.job_id.localeCompare(b.job.job_id));
    const running = entries.filter((e) => e.last?.status === "running" || e.last?.status === "created").length;
    const failed = entries.filter((e) => e.last?.status === "failure" || e.last?.status === "unknown").length;
    summary.textContent = [`${store.jobs.length} job${store.jobs.length === 1 ? "" : "s"}`, running && `${running} running`, failed && `${failed} failed last time`].filter(Boolean).join(" · ");
    fill(body, h("table", { class: "executions overview" },
      h("thead", null, h("tr", null,
        h("th", { scope: "col" }, "Job"), h("th", { scope: "col" }, "Last run"), h("th", { scope: "col" }, "Started"), h("th", { scope: "col" }, "Duration"))),
      h("tbody", null, entries.map(({ job, last, times }) => h("tr", { dataset: { jobId: job.job_id } },
        h("td", null, h("a", { class: "row-link", href: jobHref(job.job_id) }, job.job_id), job.error ? h("span", { class: "warn", title: job.error }, " !") : null),
        h("td", null, last === undefined ? h("span", { class: "muted" }, "…") : last ? [badge(last.status), " ", h("a", { href: jobHref(job.job_id, last.execution_id), class: "muted above" }, `#${last.execution_id}`)] : h("span", { class: "muted" }, "never run")),
        h("td", null, times ? ago(Number.isFinite(times.started) ? times.started : times.queued) : null),
        h("td", null, last ? runDuration(last, times) : null))))));
  }

  subscribe(schedule, signal);
  render();
}
