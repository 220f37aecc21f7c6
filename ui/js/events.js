// The live connection: servitord's `api/events` stream, reconnected with backoff.
//
// A browser allows only six HTTP/1.1 connections per host, and each open tab would
// hold one for events: so one tab (the holder of a Web Lock) reads the stream and
// hands every event to the others over a BroadcastChannel. Where those APIs are
// missing (an insecure context), each tab reads its own stream.

import { errorOf } from "./api.js";

const CHANNEL = "servitor-events";
const FIRST_DELAY = 500;
const MAX_DELAY = 10000;

const eventListeners = new Set();
const resyncListeners = new Set();
const stateListeners = new Set();

let state = { state: "connecting", message: "", retryAt: 0 };
/** Whether the pages have loaded (they wait for the first connection, or a timeout). */
let isReady = false;
let channel = null;
let leading = false;
let wake = null;
let markReady;

/** Resolves once the connection is up (or has failed once): then pages load. */
export const ready = new Promise((resolve) => {
  markReady = () => {
    isReady = true;
    resolve();
  };
});

export const connection = () => state;
/** Whether this tab is the one reading the stream (for the others too). */
export const leads = () => leading;

function listen(set, fn, signal) {
  set.add(fn);
  signal?.addEventListener("abort", () => set.delete(fn), { once: true });
  return () => set.delete(fn);
}

/** `fn(event)` for every event, e.g. {id: "job_execution_status_changed", payload: {...}}. */
export const onEvent = (fn, signal) => listen(eventListeners, fn, signal);
/** `fn()` after the connection came back: whatever is shown may be stale. */
export const onResync = (fn, signal) => listen(resyncListeners, fn, signal);
/** `fn(state)` when the connection state changes. */
export const onState = (fn, signal) => listen(stateListeners, fn, signal);

function dispatch(set, value) {
  for (const fn of [...set]) {
    try {
      fn(value);
    } catch (error) {
      console.error(error);
    }
  }
}

function applyState(next) {
  state = next;
  if (next.state !== "connecting") markReady();
  dispatch(stateListeners, next);
}

/** Pages that loaded before this connection came up may show stale data. */
function applyResync() {
  if (isReady) dispatch(resyncListeners);
}

/** Retries at once instead of waiting for the backoff. */
export function retryNow() {
  if (leading) wake?.();
  else channel?.postMessage({ t: "retry" });
}

export function start() {
  setTimeout(markReady, 2000);
  addEventListener("online", retryNow);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.state === "disconnected") retryNow();
  });
  if (!("BroadcastChannel" in window) || !navigator.locks) {
    lead();
    return;
  }
  channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = ({ data }) => {
    if (leading) {
      // This tab leads: the others ask for the state, or for a retry.
      if (data.t === "hello") channel.postMessage({ t: "state", state });
      if (data.t === "retry") wake?.();
      return;
    }
    if (data.t === "event") dispatch(eventListeners, data.event);
    if (data.t === "state") applyState(data.state);
    if (data.t === "resync") applyResync();
  };
  channel.postMessage({ t: "hello" });
  // Held for as long as this tab lives; the next tab in line takes over after it.
  navigator.locks.request(CHANNEL, () => lead());
}

async function lead() {
  leading = true;
  let delay = FIRST_DELAY;
  const publish = (next) => {
    applyState(next);
    channel?.postMessage({ t: "state", state: next });
  };
  for (;;) {
    try {
      const response = await fetch("api/events", { cache: "no-store" });
      if (!response.ok) throw await errorOf(response);
      const loaded = isReady;
      publish({ state: "connected", message: "", retryAt: 0 });
      delay = FIRST_DELAY;
      // Events may have been missed while there was no stream: everyone refreshes
      // (this tab too, unless it is only now about to load).
      channel?.postMessage({ t: "resync" });
      if (loaded) applyResync();
      try {
        await read(response.body);
      } catch {
        // A broken connection: say what it means rather than "network error".
      }
      throw new Error("the event stream was cut off (servitord stopped?)");
    } catch (error) {
      const message = error?.message || String(error);
      publish({ state: "disconnected", message, retryAt: Date.now() + delay });
    }
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, delay);
      wake = () => { clearTimeout(timer); resolve(); };
    });
    wake = null;
    delay = Math.min(delay * 2, MAX_DELAY);
    publish({ state: "connecting", message: state.message, retryAt: 0 });
  }
}

async function read(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (!line) continue;
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        console.warn("ignoring a malformed event", line);
        continue;
      }
      dispatch(eventListeners, event);
      channel?.postMessage({ t: "event", event });
    }
  }
}
