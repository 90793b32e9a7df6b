// A short two-tone chime for a new critical alert, made with Web Audio (no sound files).
// Browsers start audio only after the user has interacted with the page: until then
// `soundBlocked` is true and the header offers a button that turns sound on.
import { signal } from "./state.js";

let context = null;
export const soundBlocked = signal(true);

export async function enableSound() {
  context ??= new AudioContext();
  if (context.state !== "running") await context.resume();
  soundBlocked.set(context.state !== "running");
}

export function chime() {
  if (!context || context.state !== "running") {
    soundBlocked.set(true);
    return false;
  }
  const start = context.currentTime;
  for (const [offset, frequency] of [[0, 880], [0.25, 660], [0.5, 880], [0.75, 660]]) {
    const tone = context.createOscillator();
    const gain = context.createGain();
    tone.frequency.value = frequency;
    gain.gain.setValueAtTime(0.25, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.22);
    tone.connect(gain).connect(context.destination);
    tone.start(start + offset);
    tone.stop(start + offset + 0.23);
  }
  // How many chimes played: what a test (or a curious operator's devtools) can see.
  document.documentElement.dataset.chimes = String(Number(document.documentElement.dataset.chimes ?? 0) + 1);
  return true;
}
