// The sidebar: every job as a tree of folders, a filter, and each job's last status.
//
// The tree is a flat list of rows (open folders and their jobs) of one fixed height,
// and only the rows on screen are in the page: ten thousand jobs cost as much to
// draw as forty. Folder counts are kept up to date by each change, not recounted.

import { ago, dot, errorBox, executionTimes, fill, h, jobHref } from "./dom.js";
import { countedAs, loadJobs, store, subscribe } from "./store.js";

const CLOSED_KEY = "servitor.closedFolders";
/** Every row's height in CSS pixels (see `.tree .row` in style.css). */
const ROW = 34;
/** Rows drawn above and below the screen, so that scrolling shows no gaps. */
const OVERSCAN = 8;

const treeEl = () => document.getElementById("tree");
const filterEl = () => document.getElementById("filter");

/** Folder: {path, name, depth, folders: [], jobs: [], counts: {running, failed}, parents}. */
let root = null;
let folderByPath = new Map();
/** job_id -> {id, name, lower, depth, folders: [ancestor folders], error}. */
let jobById = new Map();
/** job_id -> what the folder counts hold for it: "running", "failed" or null. */
let counted = new Map();
/** The rows as shown: {key, kind: "folder", folder} or {key, kind: "job", job}. */
let rows = [];
let indexOf = new Map();
/** key -> the row's element, for the rows in the page. */
let drawn = new Map();
let list = null;
let noMatch = null;
let currentJob = null;
let closed = new Set(readClosed());
let frame = 0;

function readClosed() {
  try {
    return JSON.parse(localStorage.getItem(CLOSED_KEY) ?? "[]");
  } catch {
    return [];
  }
}

function saveClosed() {
  try {
    localStorage.setItem(CLOSED_KEY, JSON.stringify([...closed]));
  } catch {
    // Storage may be disabled: folders then simply start open.
  }
}

// ---- the model -----------------------------------------------------------------

function folder(path, name, depth) {
  return { path, name, depth, folders: [], jobs: [], counts: { running: 0, failed: 0 } };
}

function build(jobs) {
  root = folder("", "", -1);
  folderByPath = new Map();
  jobById = new Map();
  counted = new Map();
  for (const job of jobs) {
    const parts = job.job_id.split("/");
    let node = root;
    const ancestors = [];
    for (let i = 0; i < parts.length - 1; i++) {
      const path = parts.slice(0, i + 1).join("/");
      let child = folderByPath.get(path);
      if (!child) {
        child = folder(path, parts[i], i);
        folderByPath.set(path, child);
        node.folders.push(child);
      }
      ancestors.push(child);
      node = child;
    }
    const record = { id: job.job_id, name: parts[parts.length - 1], lower: job.job_id.toLowerCase(), depth: parts.length - 1, folders: ancestors, error: job.error };
    node.jobs.push(record);
    jobById.set(job.job_id, record);
    const as = countedAs(store.last.get(job.job_id));
    counted.set(job.job_id, as);
    if (as) for (const f of ancestors) f.counts[as]++;
  }
  for (const f of [root, ...folderByPath.values()]) f.folders.sort((a, b) => a.name.localeCompare(b.name));
}

function terms() {
  return filterEl().value.trim().toLowerCase().split(/\s+/).filter(Boolean);
}

/** The rows to show: open folders' contents, or with a filter every match and its folders. */
function flatten() {
  const wanted = terms();
  rows = [];
  const walk = (node) => {
    let matches = 0;
    for (const f of node.folders) {
      const at = rows.length;
      rows.push({ key: `f:${f.path}`, kind: "folder", folder: f });
      if (wanted.length) {
        const inside = walk(f);
        if (inside) matches += inside;
        else rows.length = at; // no match inside: the folder goes too
      } else if (!closed.has(f.path)) {
        walk(f);
      }
    }
    for (const job of node.jobs) {
      if (wanted.length && !wanted.every((t) => job.lower.includes(t))) continue;
      rows.push({ key: `j:${job.id}`, kind: "job", job });
      matches++;
    }
    return matches;
  };
  if (root) walk(root);
  indexOf = new Map(rows.map((row, i) => [row.key, i]));
}

// ---- drawing -------------------------------------------------------------------

function jobRow(job) {
  const statusDot = dot(undefined);
  const time = h("span", { class: "when" });
  const name = h("span", { class: "name" });
  const link = h("a", { class: "row job", href: jobHref(job.id), title: job.id, dataset: { jobId: job.id } },
    statusDot, name, job.error ? h("span", { class: "warn", title: job.error }, "!") : null, time);
  link.style.setProperty("--depth", job.depth);
  link.parts = { dot: statusDot, time, name };
  showName(name, job.name);
  updateJob(link, job.id);
  return link;
}

function folderRow(f) {
  const agg = h("span", { class: "agg" });
  const button = h("button", { type: "button", class: "row folder", title: f.path, dataset: { path: f.path } },
    h("span", { class: "caret", "aria-hidden": "true" }), h("span", { class: "name" }, f.name), agg);
  button.style.setProperty("--depth", f.depth);
  button.parts = { agg };
  button.addEventListener("click", () => toggle(f.path));
  updateFolder(button, f);
  return button;
}

/** The name, with the filter's first term marked where it appears. */
function showName(el, name) {
  const [first] = terms();
  const at = first ? name.toLowerCase().indexOf(first) : -1;
  if (at >= 0) fill(el, name.slice(0, at), h("mark", null, name.slice(at, at + first.length)), name.slice(at + first.length));
  else el.textContent = name;
}

function updateJob(el, jobId) {
  const last = store.last.get(jobId);
  const status = last === undefined ? undefined : last?.status ?? null;
  const fresh = dot(status);
  el.parts.dot.replaceWith(fresh);
  el.parts.dot = fresh;
  const times = last ? executionTimes(last) : null;
  fill(el.parts.time, times && Number.isFinite(times.queued) ? ago(times.queued) : null);
}

function updateFolder(el, f) {
  const { running, failed } = f.counts;
  const text = `${running}/${failed}`;
  if (el.parts.shown === text) return;
  el.parts.shown = text;
  fill(el.parts.agg,
    running ? h("span", { class: "pill s-running", title: `${running} running` }, running) : null,
    failed ? h("span", { class: "pill s-failure", title: `${failed} failed last time` }, failed) : null);
}

/** The rows on screen, in row numbers: [from, to). */
function onScreen() {
  const box = list.getBoundingClientRect();
  const side = document.getElementById("sidebar").getBoundingClientRect();
  const top = Math.max(0, side.top) - box.top;
  const bottom = Math.min(innerHeight, side.bottom) - box.top;
  const from = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
  const to = Math.min(rows.length, Math.ceil(bottom / ROW) + OVERSCAN);
  return [from, Math.max(from, to)];
}

/** Draws the rows on screen (and `also`, a row number to keep), reusing drawn rows. */
function draw(also = -1) {
  frame = 0;
  if (!list) return;
  list.style.height = `${rows.length * ROW}px`;
  const [from, to] = onScreen();
  const wanted = [];
  for (let i = from; i < to; i++) wanted.push(i);
  // The focused row stays, even off screen, so the keyboard does not lose its place.
  const focusedKey = document.activeElement?.closest?.("#tree .row")?.dataset.key;
  for (const i of [also, indexOf.get(focusedKey) ?? -1]) {
    if (i >= 0 && i < rows.length && (i < from || i >= to) && !wanted.includes(i)) wanted.push(i);
  }
  wanted.sort((a, b) => a - b);
  const filtering = terms().length > 0;
  const keep = new Map();
  let next = list.firstChild;
  for (const i of wanted) {
    const row = rows[i];
    let el = drawn.get(row.key);
    if (!el) {
      el = row.kind === "job" ? jobRow(row.job) : folderRow(row.folder);
      el.dataset.key = row.key;
    }
    el.style.top = `${i * ROW}px`;
    el.dataset.index = String(i);
    if (row.kind === "folder") el.setAttribute("aria-expanded", String(filtering || !closed.has(row.folder.path)));
    else if (row.job.id === currentJob) el.setAttribute("aria-current", "page");
    else el.removeAttribute("aria-current");
    keep.set(row.key, el);
    // In row order in the page too (for Tab and screen readers); moves only what is out of place.
    if (el === next) next = next.nextSibling;
    else list.insertBefore(el, next);
  }
  for (const [key, el] of drawn) if (!keep.has(key)) el.remove();
  drawn = keep;
}

function redraw() {
  if (!frame) frame = requestAnimationFrame(() => draw());
}

/** Rows drawn for another filter are drawn again (their names are marked differently). */
function reflow() {
  for (const el of drawn.values()) el.remove();
  drawn = new Map();
  flatten();
  draw();
  if (noMatch) {
    const query = filterEl().value.trim();
    noMatch.hidden = rows.length > 0 || !query;
    noMatch.textContent = `No job matches “${query}”.`;
  }
}

function render() {
  const el = treeEl();
  drawn = new Map();
  list = null;
  noMatch = null;
  if (store.error && !store.loaded) {
    fill(el, errorBox(store.error, () => loadJobs()));
    return;
  }
  if (!store.loaded) return;
  if (!store.jobs.length) {
    fill(el, h("p", { class: "muted pad" }, "No jobs yet: put executable files under ", h("code", null, "config/jobs/"), " in servitord's working directory."));
    return;
  }
  build(store.jobs);
  list = h("div", { class: "rows" });
  noMatch = h("p", { class: "muted pad no-match", hidden: true });
  fill(el, list, noMatch);
  openTo(currentJob);
  reflow();
  reveal(currentJob);
}

/** Applies changed latest executions: the rows and folder counts they touch, nothing else. */
function applyChanges(jobIds) {
  const folders = new Set();
  for (const id of jobIds) {
    const job = jobById.get(id);
    if (!job) continue;
    const as = countedAs(store.last.get(id));
    const was = counted.get(id);
    if (as !== was) {
      counted.set(id, as);
      for (const f of job.folders) {
        if (was) f.counts[was]--;
        if (as) f.counts[as]++;
        folders.add(f);
      }
    }
    const el = drawn.get(`j:${id}`);
    if (el) updateJob(el, id);
  }
  for (const f of folders) {
    const el = drawn.get(`f:${f.path}`);
    if (el) updateFolder(el, f);
  }
}

// ---- folders, the current job, the keyboard ----------------------------------------

function toggle(path) {
  if (terms().length) return; // with a filter, every folder with a match is open
  if (closed.has(path)) closed.delete(path);
  else closed.add(path);
  saveClosed();
  flatten();
  draw();
}

/** Opens the folders around `jobId`; answers whether any was closed. */
function openTo(jobId) {
  const job = jobId && jobById.get(jobId);
  if (!job) return false;
  let opened = false;
  for (const f of job.folders) if (closed.delete(f.path)) opened = true;
  if (opened) saveClosed();
  return opened;
}

/** Scrolls the row of `jobId` into view, when it is shown. */
function reveal(jobId) {
  const i = indexOf.get(`j:${jobId}`);
  if (i === undefined) return;
  draw(i);
  drawn.get(`j:${jobId}`)?.scrollIntoView({ block: "nearest" });
}

export function markCurrent(jobId) {
  currentJob = jobId;
  if (!list) return;
  if (openTo(jobId)) flatten();
  draw();
  if (jobId) reveal(jobId);
}

/** Moves the focus to row `i`, drawing it first. */
function focusRow(i) {
  if (i < 0 || i >= rows.length) return;
  draw(i);
  const el = drawn.get(rows[i].key);
  el?.scrollIntoView({ block: "nearest" });
  el?.focus();
}

function onFilter() {
  if (list) reflow();
}

export function startTree() {
  subscribe((change) => {
    if (change.kind === "jobs") render();
    else if (change.kind === "last" && list) applyChanges(change.jobIds);
  });
  const filter = filterEl();
  filter.addEventListener("input", onFilter);
  filter.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      focusRow(0);
    } else if (e.key === "Enter") {
      const first = rows.find((row) => row.kind === "job");
      if (first) location.hash = jobHref(first.job.id);
    } else if (e.key === "Escape" && filter.value) {
      filter.value = "";
      onFilter();
    }
  });
  // Arrow keys move between the tree's rows, and open and close folders.
  treeEl().addEventListener("keydown", (e) => {
    const el = document.activeElement?.closest?.("#tree .row");
    if (!el) return;
    const at = Number(el.dataset.index);
    const row = rows[at];
    if (e.key === "ArrowDown") focusRow(at + 1);
    else if (e.key === "ArrowUp") {
      if (at === 0) filter.focus();
      else focusRow(at - 1);
    } else if (row?.kind === "folder" && (e.key === "ArrowRight" || e.key === "ArrowLeft")) {
      if (closed.has(row.folder.path) === (e.key === "ArrowRight")) toggle(row.folder.path);
    } else return;
    e.preventDefault();
  });
  document.getElementById("sidebar").addEventListener("scroll", redraw, { passive: true });
  addEventListener("scroll", redraw, { passive: true });
  addEventListener("resize", redraw);
  document.addEventListener("keydown", (e) => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    e.preventDefault();
    filter.focus();
    filter.select();
  });
}
