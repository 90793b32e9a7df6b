// The live feed (/api/live, docs/live.md): a WebSocket that says what changed, so views refetch
// only that. It reconnects by itself with growing pauses, and after any gap (a restart, a
// `resync`) tells every view to refetch everything, since changes may have been missed.
import { signal } from "./state.js";

export const connection = signal("connecting"); // connecting | open | closed
export const restoredAt = signal(0);

const listeners = new Set();
let socket = null;
let stopped = true;
let attempt = 0;
let retryTimer = null;
let everOpened = false;

/** Calls `listener(changes)` for each frame; `changes.resync` means: refetch everything. */
export function onChanges(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function emit(changes) {
  for (const listener of [...listeners]) {
    try {
      listener(changes);
    } catch (error) {
      console.error("live listener failed", error);
    }
  }
}

export function startLive(token) {
  stopped = false;
  attempt = 0;
  everOpened = false;
  connect(token);
}

export function stopLive() {
  stopped = true;
  clearTimeout(retryTimer);
  socket?.close(1000, "signed out");
  socket = null;
}

function connect(token) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/live`);
  socket = ws;
  connection.set(everOpened ? "closed" : "connecting");
  ws.onopen = () => ws.send(JSON.stringify({ token }));
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "hello") {
      attempt = 0;
      connection.set("open");
      if (everOpened) {
        restoredAt.set(Date.now());
        emit({ resync: true, alerts: [], households: [], warnings: [] });
      }
      everOpened = true;
    } else if (frame.type === "resync") {
      emit({ resync: true, alerts: [], households: [], warnings: [] });
    } else if (frame.type === "changes") {
      emit({
        resync: false,
        alerts: frame.alerts ?? [],
        households: frame.households ?? [],
        warnings: frame.warnings ?? [],
      });
    }
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    if (stopped) return;
    if (event.code === 4401) {
      connection.set("closed");
      window.dispatchEvent(new CustomEvent("care:unauthorized"));
      return;
    }
    connection.set(everOpened ? "closed" : "connecting");
    const pause = Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
    attempt += 1;
    retryTimer = setTimeout(() => connect(token), pause);
  };
}
