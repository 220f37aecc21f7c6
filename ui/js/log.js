// An execution's log, streamed live: decoded as a UTF-8 stream, parsed into lines
// with their ANSI styles, and drawn at most once per animation frame. Only the last
// `WINDOW` lines are in the page (more on request), so a 50 MB log stays smooth.

import { errorOf } from "./api.js";
import { PLAIN, endStyle, render } from "./ansi.js";
import { h, sleep } from "./dom.js";

/** Lines in the page at first, and how many more "show earlier" adds. */
export const WINDOW = 5000;
/** Lines kept in memory; the oldest are forgotten beyond (the raw log has them all). */
const KEPT = 500000;
/** A longer line is broken, so that one huge line cannot stall the page. */
const MAX_LINE = 8192;
/** Work done before the reader yields to the page, in milliseconds. */
const SLICE = 8;
/** Text parsed at once: a network read may bring megabytes. */
const PIECE = 65536;
/** Lines drawn in one animation frame, at most. */
const STEP = 400;

const yieldToPage = () => (globalThis.scheduler?.yield ? scheduler.yield() : new Promise((r) => setTimeout(r, 0)));

export class LogView {
  /**
   * @param {string} url the log's URL
   * @param {() => Promise<boolean>} hasEnded whether the run is over (asked when the stream ends)
   * @param {AbortSignal} signal stops everything
   */
  constructor({ url, rawUrl, hasEnded, signal }) {
    this.url = url;
    this.hasEnded = hasEnded;
    this.signal = signal;
    // Everything received: `lines[i]` starts in `styles[i]`; `base` lines were forgotten.
    this.lines = [];
    this.styles = [];
    this.base = 0;
    this.style = PLAIN;
    this.open = ""; // the last line, until its newline arrives
    this.bytes = 0;
    this.decoder = new TextDecoder("utf-8");
    // What the page shows: lines [shownFrom, shownTo) plus the open line.
    this.shownFrom = 0;
    this.shownTo = 0;
    this.window = WINDOW;
    this.follow = true;
    this.frame = 0;
    this.wake = null;

    this.linesEl = h("div", { class: "log-lines" });
    this.openEl = h("div", { class: "ln open" });
    this.earlier = h("button", { type: "button", class: "btn small earlier", hidden: true, onclick: () => this.showEarlier() });
    this.scroller = h("div", { class: "log-scroll", tabindex: "0", role: "log", "aria-label": "Log", "aria-live": "off" },
      this.earlier, this.linesEl, this.openEl);
    this.statusEl = h("span", { class: "log-state" });
    this.sizeEl = h("span", { class: "muted num log-size" });
    this.jump = h("button", { type: "button", class: "btn small jump", hidden: true, onclick: () => this.scrollToEnd() }, "↓ Follow");
    const wrap = h("button", { type: "button", class: "btn small", "aria-pressed": "true" }, "Wrap");
    wrap.addEventListener("click", () => {
      const on = wrap.getAttribute("aria-pressed") !== "true";
      wrap.setAttribute("aria-pressed", String(on));
      this.el.classList.toggle("nowrap", !on);
    });
    this.el = h("section", { class: "log card", "aria-label": "Log" },
      h("div", { class: "log-bar" },
        h("h2", null, "Log"), this.statusEl, this.sizeEl, h("span", { class: "grow" }),
        wrap, h("a", { class: "btn small", href: rawUrl ?? url, target: "_blank", rel: "noopener" }, "Raw")),
      h("div", { class: "log-body" }, this.scroller, this.jump));

    // Following stops when the reader scrolls up, and starts again at the bottom. A
    // scroll event may also come from the page growing or shrinking under a scroll
    // made here: only a move up from where this view last put it is the reader's.
    this.autoTop = 0;
    this.scroller.addEventListener("scroll", () => {
      const top = this.scroller.scrollTop;
      const atEnd = this.scroller.scrollHeight - top - this.scroller.clientHeight < 24;
      const follow = atEnd || (this.follow && top >= this.autoTop - 4);
      if (follow !== this.follow) {
        this.follow = follow;
        this.jump.hidden = follow;
        if (follow) this.schedule();
      }
    }, { passive: true, signal });
    this.setState("connecting");
  }

  setState(state, detail) {
    this.state = state;
    this.el.dataset.state = state;
    const text = { connecting: "connecting…", streaming: "live", ended: "complete", retrying: "reconnecting…", failed: "unavailable" }[state];
    this.statusEl.textContent = text ?? state;
    this.statusEl.title = detail ?? "";
    this.statusEl.className = `log-state st-${state}`;
  }

  /** Reconnects at once if the stream is waiting to retry (the connection came back). */
  retry() {
    this.wake?.();
  }

  async start() {
    let delay = 500;
    while (!this.signal.aborted) {
      let complete = false;
      try {
        const response = await fetch(this.url, { signal: this.signal, cache: "no-store" });
        if (!response.ok) throw await errorOf(response);
        this.setState("streaming");
        // The log is append-only: after a reconnect, skip what has been shown.
        let skip = this.bytes;
        const reader = response.body.getReader();
        let slice = performance.now();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          let chunk = value;
          if (skip) {
            const n = Math.min(skip, chunk.length);
            skip -= n;
            chunk = chunk.subarray(n);
            if (!chunk.length) continue;
          }
          this.bytes += chunk.length;
          const text = this.decoder.decode(chunk, { stream: true });
          for (let at = 0; at < text.length; at += PIECE) {
            this.ingest(text.slice(at, at + PIECE));
            if (performance.now() - slice > SLICE) {
              await yieldToPage();
              slice = performance.now();
            }
          }
          delay = 500;
        }
        complete = true;
      } catch (error) {
        if (this.signal.aborted) return;
        if (error?.status === 404) {
          this.setState("failed", error.message);
          this.showMessage(error.message);
          return;
        }
        this.setState("retrying", error?.message);
      }
      if (this.signal.aborted) return;
      // The stream ends when the run has ended, or when servitord went away.
      if (complete && (await this.hasEnded().catch(() => false))) {
        this.ingest(this.decoder.decode());
        this.setState("ended");
        this.schedule();
        return;
      }
      this.setState("retrying");
      await new Promise((resolve) => {
        this.wake = resolve;
        sleep(delay, this.signal).then(resolve);
      });
      this.wake = null;
      delay = Math.min(delay * 2, 10000);
    }
  }

  showMessage(message) {
    this.linesEl.append(h("div", { class: "ln note" }, message));
  }

  ingest(text) {
    if (!text) return;
    let from = 0;
    for (;;) {
      const newline = text.indexOf("\n", from);
      if (newline < 0) break;
      this.push(this.open + text.slice(from, newline));
      this.open = "";
      from = newline + 1;
    }
    this.open += text.slice(from);
    while (this.open.length > MAX_LINE) {
      // Break before an escape sequence near the cut rather than through it.
      let cut = MAX_LINE;
      const escape = this.open.lastIndexOf("\x1b", cut);
      if (escape > cut - 64 && escape > 0) cut = escape;
      const code = this.open.charCodeAt(cut - 1);
      if (code >= 0xd800 && code <= 0xdbff) cut--; // not between the halves of a surrogate pair
      this.push(this.open.slice(0, cut));
      this.open = this.open.slice(cut);
    }
    this.schedule();
  }

  push(line) {
    this.lines.push(line);
    this.styles.push(this.style);
    this.style = endStyle(line, this.style);
    if (this.lines.length > KEPT + KEPT / 10) {
      const drop = this.lines.length - KEPT;
      this.lines.splice(0, drop);
      this.styles.splice(0, drop);
      this.base += drop;
    }
  }

  get total() {
    return this.base + this.lines.length;
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  line(n) {
    const el = document.createElement("div");
    el.className = "ln";
    el.dataset.n = n + 1;
    const i = n - this.base;
    render(el, this.lines[i], this.styles[i]);
    return el;
  }

  /** Lines [from, to) as elements. */
  fragment(from, to) {
    const fragment = document.createDocumentFragment();
    for (let n = from; n < to; n++) fragment.append(this.line(n));
    return fragment;
  }

  draw() {
    this.frame = 0;
    if (this.signal.aborted) return;
    const total = this.total;
    let budget = STEP;
    if (this.follow) {
      // More new lines than a frame can draw: start over from the newest ones; the
      // window fills up again upwards once the flood has passed.
      if (total - this.shownTo > STEP) {
        this.linesEl.replaceChildren();
        this.shownFrom = this.shownTo = total - STEP;
      }
      if (this.shownTo < total) {
        budget -= total - this.shownTo;
        this.linesEl.append(this.fragment(this.shownTo, total));
        this.shownTo = total;
      }
      // Keep the window: drop lines from the top.
      const excess = this.shownTo - this.shownFrom - this.window;
      if (excess > 0) {
        const range = document.createRange();
        range.setStartBefore(this.linesEl.firstChild);
        range.setEndAfter(this.linesEl.children[excess - 1]);
        range.deleteContents();
        this.shownFrom += excess;
      }
      const floor = Math.max(this.base, total - this.window);
      if (this.shownFrom > floor && budget > 0) {
        const from = Math.max(floor, this.shownFrom - budget);
        this.linesEl.prepend(this.fragment(from, this.shownFrom));
        this.shownFrom = from;
        if (this.shownFrom > floor) this.schedule();
      }
    } else {
      // A reader is somewhere up in the log: nothing moves; new lines are added below
      // only as far as the window allows, and the Follow button counts the rest.
      const to = Math.min(total, this.shownFrom + this.window, this.shownTo + STEP);
      if (this.shownTo < to) {
        this.linesEl.append(this.fragment(this.shownTo, to));
        this.shownTo = to;
        if (to < total && this.shownTo - this.shownFrom < this.window) this.schedule();
      }
    }
    if (this.shownFrom < this.base) this.shownFrom = this.base;
    const pending = total - this.shownTo;
    this.jump.textContent = pending > 0 ? `↓ ${pending.toLocaleString()} new lines` : "↓ Follow";
    this.openEl.replaceChildren();
    this.openEl.dataset.n = total + 1;
    this.openEl.hidden = !this.open || pending > 0;
    if (this.open) render(this.openEl, this.open, this.style);
    this.earlier.hidden = this.shownFrom <= this.base;
    if (!this.earlier.hidden) {
      const more = Math.min(WINDOW, this.shownFrom - this.base);
      this.earlier.textContent = `Show ${more.toLocaleString()} earlier lines (${this.shownFrom.toLocaleString()} above)`;
    }
    const count = total + (this.open ? 1 : 0);
    this.sizeEl.textContent = `${count.toLocaleString()} lines · ${formatBytes(this.bytes)}`;
    this.el.dataset.lines = String(count);
    if (this.follow) this.toEnd();
  }

  toEnd() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.autoTop = this.scroller.scrollTop;
  }

  showEarlier() {
    const from = Math.max(this.base, this.shownFrom - WINDOW);
    if (from >= this.shownFrom) return;
    // Keep the reader where they were: the new lines go above the fold.
    this.follow = false;
    this.jump.hidden = false;
    const before = this.scroller.scrollHeight;
    this.linesEl.prepend(this.fragment(from, this.shownFrom));
    this.scroller.scrollTop += this.scroller.scrollHeight - before;
    this.window += this.shownFrom - from;
    this.shownFrom = from;
    this.schedule();
  }

  scrollToEnd() {
    this.follow = true;
    this.jump.hidden = true;
    this.window = WINDOW;
    this.toEnd();
    this.schedule();
  }
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
