/**
 * Time goes through a Clock so that tests can drive timers by hand.
 * `now()` is wall-clock milliseconds; timers are plain handles.
 */
export interface TimerHandle {
  cancel(): void;
  /** Restart the same timer from now with its original delay. */
  refresh(): void;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  setInterval(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t), refresh: () => void t.refresh() };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref?.();
    return { cancel: () => clearInterval(t), refresh: () => void t.refresh() };
  },
};
