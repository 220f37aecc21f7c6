// Pieces that more than one page shows.

import { duration, h, isActive, jobHref } from "../dom.js";

/** "Jobs / demo / greet / #3": the folders are not pages, the job and run are. */
export function crumbs(jobId, executionId) {
  const parts = jobId.split("/");
  const items = [h("li", null, h("a", { href: "#/" }, "Jobs"))];
  parts.slice(0, -1).forEach((part) => items.push(h("li", null, h("span", null, part))));
  const last = parts[parts.length - 1];
  if (executionId == null) {
    items.push(h("li", null, h("a", { href: jobHref(jobId), "aria-current": "page" }, last)));
  } else {
    items.push(h("li", null, h("a", { href: jobHref(jobId) }, last)));
    items.push(h("li", null, h("a", { href: jobHref(jobId, executionId), "aria-current": "page" }, `#${executionId}`)));
  }
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("ol", null, items));
}

/** How long a run took, counting up while it runs; "—" when unknown. */
export function runDuration(execution, times) {
  if (execution.status === "created") return h("span", { class: "muted" }, "queued");
  if (!isActive(execution.status) && !Number.isFinite(times.ended)) return h("span", { class: "muted" }, "—");
  return duration(times.started, times.ended);
}
