// The sidebar: every job as a tree of folders, a filter, and each job's last status.

import { ago, dot, errorBox, executionTimes, fill, h, jobHref } from "./dom.js";
import { loadJobs, store, subscribe } from "./store.js";

const CLOSED_KEY = "servitor.closedFolders";

const treeEl = () => document.getElementById("tree");
const filterEl = () => document.getElementById("filter");

/** job_id -> {link, dot, time}; folder path -> {details, agg, jobs: [ids]}. */
let leaves = new Map();
let folders = new Map();
let currentJob = null;
let closed = new Set(readClosed());

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

function buildTree(jobs) {
  const root = { folders: new Map(), jobs: [] };
  for (const job of jobs) {
    const parts = job.job_id.split("/");
    let node = root;
    for (const part of parts.slice(0, -1)) {
      if (!node.folders.has(part)) node.folders.set(part, { folders: new Map(), jobs: [] });
      node = node.folders.get(part);
    }
    node.jobs.push(job);
  }
  return root;
}

function renderNode(node, prefix) {
  const items = [];
  const names = [...node.folders.keys()].sort((a, b) => a.localeCompare(b));
  for (const name of names) {
    const path = prefix + name;
    const child = node.folders.get(name);
    const agg = h("span", { class: "agg" });
    const details = h("details", { open: !closed.has(path) },
      h("summary", { title: path },
        h("span", { class: "caret", "aria-hidden": "true" }),
        h("span", { class: "name" }, name), agg),
      renderNode(child, `${path}/`));
    details.addEventListener("toggle", () => {
      if (filterEl().value.trim()) return;
      if (details.open) closed.delete(path);
      else closed.add(path);
      saveClosed();
    });
    folders.set(path, { details, agg, jobs: [] });
    items.push(h("li", { class: "folder" }, details));
  }
  for (const job of node.jobs) {
    const name = job.job_id.slice(prefix.length);
    const statusDot = dot(undefined);
    const time = h("span", { class: "when" });
    const link = h("a", { class: "job", href: jobHref(job.job_id), title: job.job_id, dataset: { jobId: job.job_id } },
      statusDot, h("span", { class: "name" }, name), job.error ? h("span", { class: "warn", title: job.error }, "!") : null, time);
    leaves.set(job.job_id, { link, dot: statusDot, time, name });
    items.push(h("li", { class: "leaf" }, link));
  }
  return h("ul", { class: "tree-list", role: "list" }, items);
}

function render() {
  const el = treeEl();
  leaves = new Map();
  folders = new Map();
  if (store.error && !store.loaded) {
    fill(el, errorBox(store.error, () => loadJobs()));
    return;
  }
  if (!store.jobs.length) {
    fill(el, h("p", { class: "muted pad" }, "No jobs yet: put executable files under ", h("code", null, "config/jobs/"), " in servitord's working directory."));
    return;
  }
  fill(el, renderNode(buildTree(store.jobs), ""), h("p", { class: "muted pad no-match", hidden: true }));
  for (const job of store.jobs) {
    const parts = job.job_id.split("/");
    for (let i = 1; i < parts.length; i++) folders.get(parts.slice(0, i).join("/"))?.jobs.push(job.job_id);
  }
  for (const id of leaves.keys()) updateLeaf(id);
  for (const path of folders.keys()) updateFolder(path);
  applyFilter();
  markCurrent(currentJob);
}

function updateLeaf(jobId) {
  const leaf = leaves.get(jobId);
  if (!leaf) return;
  const last = store.last.get(jobId);
  const status = last === undefined ? undefined : last?.status ?? null;
  const fresh = dot(status);
  leaf.dot.replaceWith(fresh);
  leaf.dot = fresh;
  const times = last ? executionTimes(last) : null;
  fill(leaf.time, times && Number.isFinite(times.queued) ? ago(times.queued) : null);
}

function updateFolder(path) {
  const folder = folders.get(path);
  if (!folder) return;
  const statuses = folder.jobs.map((id) => store.last.get(id)?.status);
  const running = statuses.filter((s) => s === "running" || s === "created").length;
  const failed = statuses.filter((s) => s === "failure" || s === "unknown").length;
  fill(folder.agg,
    running ? h("span", { class: "pill s-running", title: `${running} running` }, running) : null,
    failed ? h("span", { class: "pill s-failure", title: `${failed} failed last time` }, failed) : null);
}

function applyFilter() {
  const query = filterEl().value.trim().toLowerCase();
  const terms = query.split(/\s+/).filter(Boolean);
  let shown = 0;
  for (const [id, leaf] of leaves) {
    const hay = id.toLowerCase();
    const match = terms.every((t) => hay.includes(t));
    leaf.link.parentElement.hidden = !match;
    if (match) shown++;
    // Highlight the first term where it appears in the leaf's own name.
    const nameEl = leaf.link.querySelector(".name");
    const at = terms.length ? leaf.name.toLowerCase().indexOf(terms[0]) : -1;
    if (at >= 0) fill(nameEl, leaf.name.slice(0, at), h("mark", null, leaf.name.slice(at, at + terms[0].length)), leaf.name.slice(at + terms[0].length));
    else nameEl.textContent = leaf.name;
  }
  // Deepest folders first, so a parent sees whether its children are shown.
  const paths = [...folders.keys()].sort((a, b) => b.split("/").length - a.split("/").length);
  for (const path of paths) {
    const { details } = folders.get(path);
    const visible = [...details.querySelectorAll(":scope > ul > li")].some((li) => !li.hidden);
    details.parentElement.hidden = !visible;
    details.open = terms.length ? true : !closed.has(path);
  }
  const noMatch = treeEl().querySelector(".no-match");
  if (noMatch) {
    noMatch.hidden = shown > 0;
    noMatch.textContent = `No job matches “${query}”.`;
  }
}

function visibleItems() {
  return [...treeEl().querySelectorAll("a.job, summary")].filter((el) => el.offsetParent !== null);
}

export function markCurrent(jobId) {
  currentJob = jobId;
  for (const [id, leaf] of leaves) {
    if (id === jobId) leaf.link.setAttribute("aria-current", "page");
    else leaf.link.removeAttribute("aria-current");
  }
  const leaf = jobId && leaves.get(jobId);
  if (!leaf) return;
  for (let el = leaf.link.parentElement; el && el !== treeEl(); el = el.parentElement) {
    if (el.tagName === "DETAILS" && !el.open) el.open = true;
  }
  leaf.link.scrollIntoView({ block: "nearest" });
}

export function startTree() {
  subscribe((change) => {
    if (change.kind === "jobs") render();
    else if (change.kind === "last") {
      updateLeaf(change.jobId);
      const parts = change.jobId.split("/");
      for (let i = 1; i < parts.length; i++) updateFolder(parts.slice(0, i).join("/"));
    }
  });
  const filter = filterEl();
  filter.addEventListener("input", applyFilter);
  filter.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      visibleItems()[0]?.focus();
    } else if (e.key === "Enter") {
      const first = [...leaves.values()].find((leaf) => !leaf.link.parentElement.hidden && leaf.link.offsetParent !== null);
      if (first) location.hash = first.link.getAttribute("href");
    } else if (e.key === "Escape" && filter.value) {
      filter.value = "";
      applyFilter();
    }
  });
  // Arrow keys move between the tree's items; Tab works as everywhere else.
  treeEl().addEventListener("keydown", (e) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const items = visibleItems();
    const at = items.indexOf(document.activeElement);
    if (at < 0) return;
    e.preventDefault();
    if (e.key === "ArrowUp" && at === 0) filter.focus();
    else items[Math.min(items.length - 1, at + (e.key === "ArrowDown" ? 1 : -1))]?.focus();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    e.preventDefault();
    filter.focus();
    filter.select();
  });
}
