// Boot and routing. Every page has its own URL fragment, so links, reloads and the
// back button work:  #/  ·  #/job/<job id>  ·  #/job/<job id>/execution/<n>

import { fill, h, setTitle, startTicker } from "./dom.js";
import { connection, leads, onState, ready, retryNow, start } from "./events.js";
import { executionPage } from "./pages/execution.js";
import { homePage } from "./pages/home.js";
import { jobPage } from "./pages/job.js";
import { loadJobs, startStore } from "./store.js";
import { markCurrent, startTree } from "./tree.js";

const pages = { home: homePage, job: jobPage, execution: executionPage };

export function parseRoute(hash) {
  const path = hash.replace(/^#\/?/, "").replace(/\/+$/, "");
  if (!path) return { page: "home" };
  let parts;
  try {
    parts = path.split("/").map(decodeURIComponent);
  } catch {
    return { page: "missing" };
  }
  if (parts[0] !== "job" || parts.length < 2) return { page: "missing" };
  const rest = parts.slice(1);
  const n = rest.length;
  if (n >= 3 && rest[n - 2] === "execution" && /^\d+$/.test(rest[n - 1])) {
    return { page: "execution", jobId: rest.slice(0, -2).join("/"), executionId: rest[n - 1] };
  }
  return { page: "job", jobId: rest.join("/") };
}

let current = null;

function route() {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const r = parseRoute(location.hash);
  document.body.dataset.page = r.page;
  markCurrent(r.jobId ?? null);
  const main = document.getElementById("main");
  delete main.dataset.status;
  if (r.page === "missing") {
    setTitle("Not found");
    fill(main, h("h1", { tabindex: "-1" }, "Page not found"), h("p", null, "No page at this address. ", h("a", { href: "#/" }, "Back to the overview")));
    return;
  }
  pages[r.page](main, r, controller.signal);
  // Keyboard and screen-reader users land on the new page's heading, unless they
  // are moving through the job tree.
  if (!document.getElementById("sidebar").contains(document.activeElement)) {
    main.querySelector("h1")?.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

function showConnection(state) {
  const el = document.getElementById("conn");
  el.dataset.state = state.state;
  el.dataset.leader = String(leads());
  el.querySelector(".conn-text").textContent = { connected: "Live", connecting: "Connecting…", disconnected: "Disconnected" }[state.state];
  el.title = state.state === "connected" ? "Receiving live updates from servitord" : state.message;
  const banner = document.getElementById("offline");
  document.body.classList.toggle("is-offline", state.state !== "connected" && state.message !== "");
  if (state.state === "connected" || !state.message) {
    banner.hidden = true;
    return;
  }
  const seconds = Math.max(0, Math.round((state.retryAt - Date.now()) / 1000));
  fill(banner,
    h("strong", null, "Lost the connection to servitord. "),
    h("span", { class: "offline-reason" }, state.message), " ",
    state.state === "connecting" || seconds < 1 ? "Reconnecting… " : `Retrying in ${seconds} s. `,
    state.state === "disconnected" ? h("button", { type: "button", class: "btn small", onclick: retryNow }, "Retry now") : null);
  banner.hidden = false;
}

function boot() {
  startTicker();
  startStore();
  startTree();
  onState(showConnection);
  setInterval(() => {
    if (connection().state === "disconnected") showConnection(connection());
  }, 1000);
  start();
  addEventListener("hashchange", route);
  // Load once the event stream is up, so no change falls between load and stream.
  ready.then(() => {
    loadJobs();
    route();
  });
}

boot();
