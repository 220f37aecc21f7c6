// What the web UI benchmark asks the page, as async WebDriver scripts: each answers
// through the callback WebDriver passes as the last argument. Works with the old UI
// (every row in the page) and the new one (only the rows on screen).

/** The job rows of the tree that are on screen: from the top, or from the bottom. */
function treeRowsOnScreen(fromBottom) {
  const side = document.getElementById("sidebar").getBoundingClientRect();
  const top = Math.max(0, side.top);
  const bottom = Math.min(innerHeight, side.bottom);
  const all = document.querySelectorAll("#tree a.job");
  const found = [];
  // Rows are in page order, top to bottom: stop once past the screen.
  for (let k = 0; k < all.length; k++) {
    const el = all[fromBottom ? all.length - 1 - k : k];
    const r = el.getBoundingClientRect();
    if (r.height === 0) continue;
    if (fromBottom ? r.bottom <= top : r.top >= bottom) break;
    if (r.bottom > top && r.top < bottom) found.push(el);
  }
  return found;
}

/** The overview's rows on screen. */
function overviewRowsOnScreen() {
  const found = [];
  for (const tr of document.querySelectorAll(".overview tbody tr")) {
    const r = tr.getBoundingClientRect();
    if (r.top >= innerHeight) break;
    if (r.bottom > 0) found.push(tr);
  }
  return found;
}

/** Whether every job on screen (tree and overview) shows its status. */
function statusesShown(fromBottom) {
  const leaves = treeRowsOnScreen(fromBottom);
  if (!leaves.length || leaves.some((a) => a.querySelector(".dot.s-loading"))) return false;
  if (fromBottom) return true;
  const rows = overviewRowsOnScreen();
  return rows.length > 0 && !rows.some((tr) => (tr.cells[1]?.textContent ?? "…").includes("…"));
}

const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

/** Polls every frame until `check()` or `capMs` after the navigation; answers the time. */
async function until(check, capMs) {
  for (;;) {
    if (check()) return performance.now();
    if (performance.now() > capMs) return null;
    await frame();
  }
}

const PROBES = {
  /** ms after the navigation until every job on screen shows its status. */
  async visible(capMs) {
    return until(() => statusesShown(false), capMs);
  },
  /** The same for the last jobs of the tree (scrolled to its end): every job loaded. */
  async all(capMs) {
    const side = document.getElementById("sidebar");
    return until(() => {
      side.scrollTop = side.scrollHeight;
      return statusesShown(true);
    }, capMs);
  },
  /** How many of the tree's jobs show a status, and how many rows it has in the page. */
  async counts() {
    return {
      rows: document.querySelectorAll("#tree a.job").length,
      loading: document.querySelectorAll("#tree a.job .dot.s-loading").length,
    };
  },
  /** ms from typing `query` to the frame that shows only matching jobs. */
  async filter(query) {
    const side = document.getElementById("sidebar");
    side.scrollTop = 0;
    await frame();
    const input = document.getElementById("filter");
    const start = performance.now();
    input.value = query;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    await until(() => {
      const leaves = treeRowsOnScreen(false);
      return leaves.length > 0 && leaves.every((a) => a.dataset.jobId.includes(query));
    }, Infinity);
    await frame();
    const took = performance.now() - start;
    input.value = "";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    await frame();
    await frame();
    return took;
  },
  /** Starts recording long tasks (over 50 ms) of the main thread. */
  async watchLongTasks() {
    window.benchLongTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.benchLongTasks.push(entry.duration);
    }).observe({ type: "longtask" });
    return true;
  },
  async longTasks() {
    return window.benchLongTasks ?? [];
  },
  /** Whether the overview's first row is `jobId` with status `status`. */
  async firstRow() {
    const tr = document.querySelector(".overview tbody tr");
    return tr ? [tr.dataset.jobId ?? null, tr.cells[1]?.textContent ?? ""] : null;
  },
};

const done = arguments[arguments.length - 1];
PROBES[arguments[0]](...[...arguments].slice(1, -1)).then(done, (e) => done({ error: String(e) }));
