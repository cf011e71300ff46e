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

/** A Node timer behind the TimerHandle interface; one small object, no closures. */
class NodeTimer implements TimerHandle {
  constructor(
    private readonly t: NodeJS.Timeout,
    private readonly repeat: boolean,
  ) {
    t.unref();
  }

  cancel(): void {
    if (this.repeat) clearInterval(this.t);
    else clearTimeout(this.t);
  }

  refresh(): void {
    this.t.refresh();
  }
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => new NodeTimer(setTimeout(fn, ms), false),
  setInterval: (fn, ms) => new NodeTimer(setInterval(fn, ms), true),
};
