// One execution: its status, times, inputs and result, and its log streaming live.

import { api } from "../api.js";
import { ago, badge, errorBox, executionTimes, fill, formatDate, h, isActive, jobHref, parseTime, setTitle, toast, triggerMark } from "../dom.js";
import { onEvent, onResync } from "../events.js";
import { LogView } from "../log.js";
import { crumbs, runDuration } from "./common.js";

export function executionPage(main, { jobId, executionId }, signal) {
  const name = jobId.split("/").pop();
  setTitle(`${jobId} #${executionId}`);
  const statusSlot = h("span", { class: "head-status" });
  const actions = h("div", { class: "actions" });
  const details = h("div", { class: "card details" }, h("p", { class: "muted" }, "Loading…"));
  const log = new LogView({
    url: api.logUrl(jobId, executionId),
    hasEnded: async () => !isActive((await load()).status),
    signal,
  });
  fill(main,
    crumbs(jobId, executionId),
    h("div", { class: "page-head" },
      h("h1", { tabindex: "-1" }, name, " ", h("span", { class: "muted" }, `#${executionId}`)),
      statusSlot, h("span", { class: "grow" }), actions),
    details,
    log.el);

  let execution = null;
  let spec = {};
  let cancelling = false;

  /** Fetches the execution and shows it; answers it. */
  let loading = null;
  async function load() {
    if (loading) return loading;
    loading = (async () => {
      try {
        execution = await api.execution(jobId, executionId, signal);
        show();
        return execution;
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  async function firstLoad() {
    try {
      await load();
    } catch (error) {
      if (error.name === "AbortError") return;
      fill(details, errorBox(error, firstLoad));
      if (error.status === 404) {
        log.el.hidden = true;
        return;
      }
    }
    log.start();
  }

  function show() {
    const e = execution;
    const times = executionTimes(e);
    const active = isActive(e.status);
    if (!active) cancelling = false;
    setTitle(`${jobId} #${executionId} ${e.status}`);
    fill(statusSlot, badge(e.status, cancelling ? " · cancelling…" : e.timed_out === true ? " · timed out" : null));
    main.dataset.status = e.status;

    const cancel = active ? h("button", { type: "button", class: "btn danger", disabled: cancelling, onclick: onCancel }, cancelling ? "Cancelling…" : "Cancel") : null;
    const again = h("button", { type: "button", class: "btn", onclick: onRunAgain, title: "Start a new run with the same inputs" }, "Run again");
    // Keep the keyboard where it was when the buttons are redrawn.
    const focused = actions.contains(document.activeElement) ? document.activeElement.textContent : null;
    fill(actions, cancel, again);
    if (focused) ([...actions.children].find((b) => b.textContent === focused) ?? again).focus();

    const fact = (label, value, cls) => h("div", { class: cls }, h("dt", null, label), h("dd", null, value));
    const when = (ms) => Number.isFinite(ms)
      ? [h("span", { title: formatDate(ms) }, clock(ms)), " ", h("span", { class: "muted" }, "· ", ago(ms))]
      : h("span", { class: "muted" }, "—");
    const result = e.result;
    const inputs = Object.entries(e.input_values ?? {});
    const historyOpen = details.querySelector("details.history")?.open ?? false;
    fill(details,
      e.error ? h("div", { class: "error-box", role: "alert" }, h("strong", null, "Damaged execution: "), e.error) : null,
      h("dl", { class: "facts" },
        fact("Queued", when(times.queued)),
        fact("Started", when(times.started)),
        fact("Ended", when(times.ended)),
        fact("Duration", runDuration(e, times), "duration"),
        e.trigger ? fact("Started by", [triggerMark(jobId, e) ?? (e.trigger === "api" ? "API" : String(e.trigger)),
          Number.isFinite(e.attempt) ? h("span", { class: "muted" }, ` · attempt ${e.attempt}`) : null], "started-by") : null,
        fact("Exit code", result ? h("span", { class: `exit-code ${result.exit_code === 0 ? "ok" : "bad"}` }, String(result.exit_code)) : h("span", { class: "muted" }, "—"), "exit"),
        result?.message ? fact("Message", h("span", { class: "message" }, result.message), "wide") : null,
        e.slurm ? fact("Slurm job", h("span", { class: "slurm" }, h("code", null, e.slurm.job_id), e.slurm.node ? [" on ", h("code", null, e.slurm.node)] : h("span", { class: "muted" }, " · waiting for a node")), "slurm") : null,
        inputs.length ? fact("Inputs", h("table", { class: "kv" }, h("tbody", null, inputs.map(([key, value]) => h("tr", null,
          h("th", { scope: "row" }, h("code", null, key)), h("td", null, inputValue(value, spec[key]?.secret === true)))))), "wide inputs") : null),
      history(e, historyOpen));
  }

  async function onCancel() {
    cancelling = true;
    show();
    try {
      await api.cancel(jobId, executionId);
    } catch (error) {
      cancelling = false;
      toast(`Could not cancel: ${error.message}`, { kind: "error" });
      load().catch(() => {});
    }
  }

  async function onRunAgain() {
    try {
      const id = await api.run(jobId, execution?.input_values ?? {});
      if (id != null) location.hash = jobHref(jobId, id);
      else location.hash = jobHref(jobId);
    } catch (error) {
      toast(`Could not start the run: ${error.message}`, { kind: "error" });
    }
  }

  onEvent((event) => {
    const payload = event?.payload;
    if (payload?.job_id !== jobId || String(payload.execution_id) !== executionId) return;
    if (event.id === "job_execution_cancellation_requested") cancelling = true;
    if (event.id === "job_execution_status_changed" && execution) {
      execution = { ...execution, status: payload.status };
      show();
    }
    load().catch(() => {});
  }, signal);
  onResync(() => {
    load().catch(() => {});
    log.retry();
  }, signal);

  // The spec says which inputs are secret; the page works without it.
  api.job(jobId, signal).then((job) => {
    spec = job?.input_spec && typeof job.input_spec === "object" ? job.input_spec : {};
    if (execution) show();
  }, () => {});
  firstLoad();
}

/** The time of day when `ms` is today, else the date and time. */
function clock(ms) {
  const text = formatDate(ms);
  return text.slice(0, 10) === formatDate(Date.now()).slice(0, 10) ? text.slice(11) : text;
}

function inputValue(value, secret) {
  const text = String(value);
  if (!secret) return h("span", { class: "value" }, text);
  const shown = h("span", { class: "value secret" }, "••••••••");
  const toggle = h("button", { type: "button", class: "btn small", "aria-pressed": "false" }, "Show");
  toggle.addEventListener("click", () => {
    const reveal = toggle.getAttribute("aria-pressed") !== "true";
    toggle.setAttribute("aria-pressed", String(reveal));
    toggle.textContent = reveal ? "Hide" : "Show";
    shown.textContent = reveal ? text : "••••••••";
  });
  return [shown, " ", toggle];
}

function history(e, open) {
  const entries = Array.isArray(e.status_history) ? e.status_history : [];
  if (!entries.length) return null;
  return h("details", { class: "history", open },
    h("summary", null, `Status history (${entries.length})`),
    h("ol", null, entries.map((entry) => h("li", null,
      h("span", { class: "num" }, formatDate(parseTime(entry.timestamp))), " ",
      badge(entry.status), " ", h("code", { class: "muted ts" }, entry.timestamp)))));
}
