// A job: its run form and its executions, kept current from the event stream.

import { api } from "../api.js";
import { ago, badge, errorBox, executionTimes, fill, formatDate, h, jobHref, parseTime, setTitle, toast, triggerMark, until } from "../dom.js";
import { onEvent, onResync } from "../events.js";
import { refreshJob, store, subscribe } from "../store.js";
import { crumbs, runDuration } from "./common.js";

const PAGE = 50;

export function jobPage(main, { jobId }, signal) {
  setTitle(jobId);
  const name = jobId.split("/").pop();
  const formSlot = h("div", null, h("p", { class: "muted" }, "Loading…"));
  const listSlot = h("div", null);
  const count = h("span", { class: "count muted" });
  const limitsLine = h("p", { class: "limits muted", hidden: true });
  const scheduleCard = h("section", { class: "card schedule", "aria-labelledby": "schedule-title", hidden: true });
  fill(main,
    crumbs(jobId),
    h("div", { class: "page-head" },
      h("h1", { tabindex: "-1" }, name), h("code", { class: "job-id" }, jobId)),
    limitsLine,
    scheduleCard,
    h("section", { class: "card run-card", "aria-labelledby": "run-title" },
      h("h2", { id: "run-title" }, "Run"), formSlot),
    h("section", { class: "card", "aria-labelledby": "executions-title" },
      h("h2", { id: "executions-title" }, "Executions ", count), listSlot));

  let job = null;
  /** execution id -> its row; the table body. */
  const rows = new Map();
  const tbody = h("tbody");
  const more = h("button", { type: "button", class: "btn more", hidden: true, onclick: () => loadOlder() }, "Show older executions");
  const empty = h("p", { class: "muted empty", hidden: true }, "No runs yet.");
  const table = h("table", { class: "executions" },
    h("thead", null, h("tr", null,
      h("th", { scope: "col" }, "#"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Started"),
      h("th", { scope: "col" }, "Duration"), h("th", { scope: "col", class: "exit" }, "Exit code"))),
    tbody);

  let shownSpec = null;
  async function loadJob() {
    try {
      job = await api.job(jobId, signal);
      const parts = limits(job.settings);
      limitsLine.textContent = parts.length ? `Settings: ${parts.join(" · ")}` : "";
      limitsLine.hidden = !parts.length;
      showSchedule();
      // Redrawn only when the spec changed, so that what was typed in stays.
      const spec = JSON.stringify([job.input_spec, job.error]);
      if (spec === shownSpec && formSlot.querySelector("form")) return;
      shownSpec = spec;
      fill(formSlot, runForm(job));
    } catch (error) {
      if (error.name === "AbortError") return;
      shownSpec = null;
      fill(formSlot, errorBox(error, loadJob));
    }
  }

  /** The newest executions, as many as are shown (a page at first). */
  async function loadExecutions() {
    const limit = Math.max(PAGE, rows.size);
    try {
      const list = await api.executions(jobId, { limit, signal });
      rows.clear();
      tbody.replaceChildren();
      for (const execution of list) upsert(execution);
      more.hidden = list.length < limit;
      fill(listSlot, table, empty, more);
      refreshEmpty();
    } catch (error) {
      if (error.name === "AbortError") return;
      fill(listSlot, errorBox(error, loadExecutions));
    }
  }

  /** The next page of older executions. */
  async function loadOlder() {
    const before = Math.min(...[...rows.keys()].map(Number));
    more.disabled = true;
    try {
      const list = await api.executions(jobId, { limit: PAGE, before, signal });
      for (const execution of list) upsert(execution);
      more.hidden = list.length < PAGE;
      refreshEmpty();
    } catch (error) {
      if (error.name !== "AbortError") toast(`Could not load older executions: ${error.message}`, { kind: "error" });
    } finally {
      more.disabled = false;
    }
  }

  function refreshEmpty() {
    empty.hidden = rows.size > 0;
    table.hidden = rows.size === 0;
    count.textContent = rows.size ? `(${more.hidden ? "" : "latest "}${rows.size})` : "";
  }

  function upsert(execution, { fresh = false } = {}) {
    const id = String(execution.execution_id);
    const tr = row(jobId, execution);
    const old = rows.get(id);
    if (old) {
      if (old.classList.contains("fresh")) tr.classList.add("fresh");
      old.replaceWith(tr);
    } else {
      // Rows are newest first: before the first one that is older.
      const next = [...tbody.children].find((other) => Number(other.dataset.executionId) < Number(id));
      tbody.insertBefore(tr, next ?? null);
      if (fresh) tr.classList.add("fresh");
    }
    rows.set(id, tr);
    refreshEmpty();
  }

  // One fetch at a time per execution, however many events arrive meanwhile.
  const inflight = new Map();
  function refresh(executionId, options) {
    if (inflight.has(executionId)) {
      inflight.set(executionId, true);
      return;
    }
    inflight.set(executionId, false);
    (async () => {
      do {
        inflight.set(executionId, false);
        try {
          const execution = await api.execution(jobId, executionId, signal);
          if (!signal.aborted) upsert(execution, options);
        } catch (error) {
          if (error.name === "AbortError") return;
        }
      } while (inflight.get(executionId));
      inflight.delete(executionId);
    })();
  }

  // The card is redrawn each time the job runs (its next run moved): its parts are
  // refilled in place, so that the Pause button under the pointer or with the focus
  // stays the same element.
  const scheduleTitle = h("h2", { id: "schedule-title" });
  const scheduleRule = h("p", { class: "schedule-rule" });
  const nextRun = h("p", { class: "next-run" });
  const pauseButton = h("button", { type: "button", class: "btn", onclick: () => setPaused(job?.schedule?.paused !== true) });
  fill(scheduleCard, scheduleTitle, scheduleRule, nextRun, h("div", { class: "form-actions" }, pauseButton));

  /** The schedule in words, its next run, Pause or Resume (nothing for an unscheduled job). */
  function showSchedule() {
    const schedule = job?.schedule;
    scheduleCard.hidden = !schedule || typeof schedule !== "object";
    if (scheduleCard.hidden) return;
    const next = parseTime(job.next_run);
    const paused = schedule.paused === true;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.className = paused ? "btn primary" : "btn";
    fill(scheduleTitle, "Schedule ", paused ? h("span", { class: "tag paused" }, "paused") : null);
    fill(scheduleRule, h("strong", null, schedule.description || "—"),
      schedule.timezone ? h("span", { class: "muted" }, ` · ${schedule.timezone}`) : null);
    fill(nextRun, "Next run: ",
      paused ? h("span", { class: "muted" }, "none while paused")
        : Number.isFinite(next) ? [until(next), h("span", { class: "muted" }, ` · ${formatDate(next)}`)]
          : h("span", { class: "muted" }, "none"));
  }

  async function setPaused(pause) {
    pauseButton.disabled = true;
    try {
      await (pause ? api.pauseSchedule(jobId) : api.resumeSchedule(jobId));
      toast(pause ? `Paused ${jobId}'s schedule` : `Resumed ${jobId}'s schedule`);
    } catch (error) {
      toast(`Could not ${pause ? "pause" : "resume"} the schedule: ${error.message}`, { kind: "error" });
    }
    await loadJob();
    pauseButton.disabled = false;
    refreshJob(jobId);
  }

  function runForm(job) {
    const spec = job.input_spec && typeof job.input_spec === "object" ? job.input_spec : {};
    const names = Object.keys(spec);
    const message = h("p", { class: "form-error", role: "alert", hidden: true });
    const button = h("button", { type: "submit", class: "btn primary" }, h("span", { "aria-hidden": "true" }, "▶ "), `Run ${name}`);
    const form = h("form", { class: "run-form", novalidate: false },
      job.error ? h("div", { class: "error-box" }, h("strong", null, "This job's input spec is broken: "), job.error) : null,
      names.length ? h("div", { class: "fields" }, names.map((input) => field(input, spec[input]))) : h("p", { class: "muted" }, "This job takes no inputs."),
      h("div", { class: "form-actions" }, button, message));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const inputs = {};
      for (const input of names) {
        const value = form.elements.namedItem(`input_${input}`)?.value ?? "";
        if (value !== "") inputs[input] = value;
      }
      button.disabled = true;
      message.hidden = true;
      try {
        const executionId = await api.run(jobId, inputs);
        if (executionId != null) {
          refresh(executionId, { fresh: true });
          toast(`Started ${jobId} #${executionId}`, { action: h("a", { href: jobHref(jobId, executionId) }, "Open") });
        } else {
          loadExecutions();
          toast(`Started ${jobId}`);
        }
      } catch (error) {
        message.textContent = `Could not start the run: ${error.message}`;
        message.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }

  onEvent((event) => {
    const payload = event?.payload;
    if (payload?.job_id !== jobId) return;
    const id = String(payload.execution_id);
    if (event.id === "job_execution_status_changed") {
      // Show the new status at once, then fetch the times and result.
      rows.get(id)?.querySelector(".badge")?.replaceWith(badge(payload.status));
      refresh(id);
    }
  }, signal);
  onResync(() => {
    loadJob();
    loadExecutions();
  }, signal);
  // The store fetches a scheduled job again after its runs: its next run moved.
  subscribe((change) => {
    if (change.kind !== "job" || change.jobId !== jobId || !job) return;
    const fresh = store.byId.get(jobId);
    job = { ...job, next_run: fresh?.next_run ?? null, schedule: fresh?.schedule };
    showSchedule();
  }, signal);

  loadJob();
  loadExecutions();
}

function field(input, rawSpec) {
  const spec = rawSpec && typeof rawSpec === "object" ? rawSpec : {};
  const id = `input-${input}`;
  const required = spec.required === true;
  const fallback = spec.default == null ? "" : String(spec.default);
  const choices = Array.isArray(spec.choices) ? spec.choices.map(String) : null;
  const description = typeof spec.description === "string" && spec.description ? spec.description : null;
  const common = { id, name: `input_${input}`, required, "aria-describedby": description ? `${id}-desc` : null };
  let control;
  if (choices) {
    control = h("select", common,
      !required || !choices.includes(fallback) ? h("option", { value: "" }, required ? "Choose…" : "—") : null,
      choices.map((choice) => h("option", { value: choice, selected: choice === fallback }, choice)));
  } else {
    control = h("input", {
      ...common,
      type: spec.secret === true ? "password" : "text",
      value: fallback,
      autocomplete: spec.secret === true ? "new-password" : "off",
      spellcheck: "false",
    });
  }
  return h("div", { class: "field" },
    h("label", { for: id }, h("code", null, input), required ? h("span", { class: "req", title: "required" }, " *") : null,
      spec.secret === true ? h("span", { class: "tag" }, "secret") : null),
    control,
    description ? h("small", { id: `${id}-desc`, class: "muted" }, description) : null);
}

function row(jobId, execution) {
  const id = String(execution.execution_id);
  const times = executionTimes(execution);
  const result = execution.result;
  const started = Number.isFinite(times.started) ? times.started : times.queued;
  return h("tr", { dataset: { executionId: id, status: execution.status } },
    h("td", null, h("a", { href: jobHref(jobId, id), class: "row-link" }, `#${id}`)),
    h("td", null, badge(execution.status, execution.timed_out === true ? " · timed out" : null), triggerMark(jobId, execution)),
    h("td", null, ago(started)),
    h("td", null, runDuration(execution, times)),
    h("td", { class: "exit num", title: result?.message || null }, result ? String(result.exit_code) : h("span", { class: "muted" }, "—")));
}

/** A job's settings (X.settings.json) in words, the limits first. */
function limits(settings = {}) {
  const parts = [];
  if (settings.timeout) parts.push(`timeout ${settings.timeout}`);
  if (settings.concurrency) {
    const busy = settings.on_busy === "skip" ? ", more are skipped" : "";
    parts.push(`at most ${settings.concurrency} at once${busy}`);
  }
  const retention = settings.retention || {};
  const keep = [retention.keep_last && `the last ${retention.keep_last}`, retention.max_age && `${retention.max_age}`]
    .filter(Boolean);
  if (keep.length) parts.push(`keeps ${keep.join(" or ")}`);
  if (settings.stop_signal || settings.stop_grace) {
    const grace = settings.stop_grace ? `, killed after ${settings.stop_grace}` : "";
    parts.push(`stopped with ${settings.stop_signal || "SIGINT"}${grace}`);
  }
  if (settings.env) parts.push(`env ${Object.keys(settings.env).join(", ")}`);
  return parts;
}
