// Small DOM and formatting helpers shared by every view.

/** Creates an element: h("a", {href: "#/", class: "x"}, "text", child...). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "value") el.value = value;
      else el.setAttribute(key, value === true ? "" : value);
    }
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces all children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

/** The URL fragment of a page: route("job", "demo/greet", "execution", "3"). */
export function jobHref(jobId, executionId) {
  const path = jobId.split("/").map(encodeURIComponent).join("/");
  return executionId == null ? `#/job/${path}` : `#/job/${path}/execution/${encodeURIComponent(executionId)}`;
}

// ---- statuses ----------------------------------------------------------------

const LABELS = { created: "queued", running: "running", success: "success", failure: "failure", cancelled: "cancelled", unknown: "unknown" };

export const isActive = (status) => status === "created" || status === "running";

/** A status badge: coloured dot plus word, so colour is never the only cue. */
export function badge(status, extra) {
  const known = status in LABELS ? status : "unknown";
  return h("span", { class: `badge s-${known}`, dataset: { status: status ?? "none" } },
    h("span", { class: "dot", "aria-hidden": "true" }), LABELS[known] ?? String(status), extra);
}

/** A status dot with a text alternative: `undefined` is loading, `null` never ran. */
export function dot(status) {
  const cls = status === undefined ? "loading" : status === null ? "none" : status in LABELS ? status : "unknown";
  const label = status === undefined ? "loading" : status === null ? "never run" : LABELS[cls];
  return h("span", { class: `dot s-${cls}`, dataset: { status: cls }, title: label, role: "img", "aria-label": label });
}

// ---- times -------------------------------------------------------------------

/** Milliseconds since the epoch, or NaN. Accepts microsecond ISO timestamps. */
export function parseTime(text) {
  if (typeof text !== "string") return NaN;
  // Date.parse accepts at most milliseconds in some engines: drop the extra digits.
  return Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
}

/**
 * When an execution was queued, started and ended (NaN when not, or unknown): from its
 * status history, or from the `created_at`/`started_at`/`ended_at` of a job's
 * `last_execution`.
 */
export function executionTimes(execution) {
  if (execution && "created_at" in execution) {
    return { queued: parseTime(execution.created_at), started: parseTime(execution.started_at), ended: parseTime(execution.ended_at) };
  }
  const history = Array.isArray(execution?.status_history) ? execution.status_history : [];
  const at = (status) => { const e = history.find((x) => x.status === status); return e ? parseTime(e.timestamp) : NaN; };
  const queued = history.length ? parseTime(history[0].timestamp) : NaN;
  const started = at("running");
  const last = history[history.length - 1];
  const ended = last && !isActive(last.status) && last.status !== "unknown" ? parseTime(last.timestamp) : NaN;
  return { queued, started, ended };
}

export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return "—";
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function formatRelative(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return "—";
  const s = Math.round((now - ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days < 30) return `${days} d ago`;
  return formatDate(ms).slice(0, 10);
}

/** A time to come: "in 3 h 12 min", "in 40 s", "due now". */
export function formatUntil(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return "—";
  const s = Math.round((ms - now) / 1000);
  if (s <= 0) return "due now";
  if (s < 60) return `in ${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `in ${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `in ${hours} h ${m % 60} min`;
  return `in ${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function formatDate(ms) {
  if (!Number.isFinite(ms)) return "—";
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A relative time that stays current ("5 s ago"), with the exact time as tooltip. */
export function ago(ms) {
  if (!Number.isFinite(ms)) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: new Date(ms).toISOString(), title: formatDate(ms), dataset: { ago: ms } }, formatRelative(ms));
}

/** A time to come that stays current ("in 5 min"), with the exact time as tooltip. */
export function until(ms) {
  if (!Number.isFinite(ms)) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: new Date(ms).toISOString(), title: formatDate(ms), dataset: { until: ms } }, formatUntil(ms));
}

/**
 * What started a run, when not a person or a client: "schedule", or "retry of #3"
 * (linked). Nothing for a run started through the API, or from an older daemon.
 */
export function triggerMark(jobId, execution) {
  const trigger = execution?.trigger;
  if (trigger === "schedule") return h("span", { class: "trigger", dataset: { trigger }, title: "Started by the job's schedule" }, "schedule");
  if (trigger !== "retry") return null;
  const of = execution.retry_of;
  const attempt = Number.isFinite(execution.attempt) ? `attempt ${execution.attempt}` : null;
  return h("span", { class: "trigger retry", dataset: { trigger }, title: attempt },
    of != null ? ["retry of ", h("a", { class: "above", href: jobHref(jobId, String(of)) }, `#${of}`)] : "retry");
}

/** A duration; while `end` is NaN it keeps counting up from `start`. */
export function duration(start, end) {
  if (!Number.isFinite(start)) return h("span", { class: "muted" }, "—");
  if (Number.isFinite(end)) return h("span", { class: "num" }, formatDuration(end - start));
  return h("span", { class: "num ticking", dataset: { since: start } }, formatDuration(Date.now() - start));
}

/** Updates every live time on the page once a second (only while it is visible). */
export function startTicker() {
  setInterval(() => {
    if (document.hidden) return;
    const now = Date.now();
    for (const el of document.querySelectorAll("[data-ago]")) el.textContent = formatRelative(Number(el.dataset.ago), now);
    for (const el of document.querySelectorAll("[data-since]")) el.textContent = formatDuration(now - Number(el.dataset.since));
    for (const el of document.querySelectorAll("[data-until]")) el.textContent = formatUntil(Number(el.dataset.until), now);
  }, 1000);
}

// ---- feedback ----------------------------------------------------------------

/** A short message in the corner; errors stay until closed or replaced. */
export function toast(message, { kind = "info", action } = {}) {
  const box = document.getElementById("toasts");
  const close = h("button", { class: "icon", type: "button", "aria-label": "Dismiss" }, "×");
  const item = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", null, message), action, close);
  close.addEventListener("click", () => item.remove());
  action?.addEventListener("click", () => item.remove());
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => item.remove(), kind === "error" ? 15000 : 6000);
  return item;
}

/** A boxed error message for a failed load. */
export function errorBox(error, retry) {
  return h("div", { class: "error-box", role: "alert" },
    h("strong", null, error?.status === 404 ? "Not found" : "Error"), " ",
    h("span", { class: "error-message" }, error?.message ?? String(error)),
    retry && h("button", { type: "button", class: "btn small", onclick: retry }, "Retry"));
}

export function setTitle(...parts) {
  document.title = [...parts.filter(Boolean), "Servitor"].join(" · ");
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
