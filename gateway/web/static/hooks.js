// Loading what a view shows, and loading it again when the live feed says it changed.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { onChanges } from "./live.js";

const SETTLE_MS = 120;
/** Changes arriving together (a burst of readings) cause one refetch, not one each. */

/**
 * `loader(abortSignal)` fetches the view's data; it runs again when `deps` change, after any
 * resync, and when `relevant(changes)` says a live frame concerns the view: `true` (soon) or
 * a delay in ms (readings that only move a "last heard" time can wait a few seconds).
 */
export function useLoad(loader, deps, relevant = () => false) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const loaderRef = useRef(loader);
  loaderRef.current = loader;
  const relevantRef = useRef(relevant);
  relevantRef.current = relevant;
  const running = useRef(null);

  const reload = useCallback(async () => {
    running.current?.abort();
    const abort = new AbortController();
    running.current = abort;
    try {
      const data = await loaderRef.current(abort.signal);
      if (!abort.signal.aborted) setState({ data, error: null, loading: false });
    } catch (error) {
      if (!abort.signal.aborted) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, []);

  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    reload();
    return () => running.current?.abort();
  }, deps);

  useEffect(() => {
    // Throttled, not debounced: under a steady stream of readings a debounce would never fire.
    let timer = null;
    let due = Infinity;
    const off = onChanges((changes) => {
      const verdict = changes.resync ? true : relevantRef.current(changes);
      if (!verdict) return;
      const delay = verdict === true ? SETTLE_MS : verdict;
      const at = Date.now() + delay;
      if (timer && due <= at) return;
      clearTimeout(timer);
      due = at;
      timer = setTimeout(() => {
        timer = null;
        due = Infinity;
        reload();
      }, delay);
    });
    return () => {
      off();
      clearTimeout(timer);
    };
  }, [reload]);

  return { ...state, reload };
}

/** Re-renders every `ms` so "5 minutes ago" stays true on a screen left open all day. */
export function useTick(ms = 30000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** The page's hash route: "#/household/H001" → ["household", "H001"]. */
export function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  return parts.length ? parts : ["overview"];
}
