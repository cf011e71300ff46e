/**
 * One physical port: opens it (resolving a USB match to a path at every open), frames its
 * bytes, serialises request/response transactions of the devices that share it, pauses it
 * while too many readings wait for the bus, and reopens it with capped backoff when it is
 * lost. It never gives up and never throws into its caller.
 *
 *   (re)open ─▶ open ──'close'/'error'──▶ waiting ──backoff──▶ (re)open
 *                 │ data ─▶ framer ─▶ frame ─▶ current transaction? ─yes─▶ its answer
 *                 │                                 └─no─▶ events.frame (unsolicited)
 *                 └ idle timer (no byte for idleMs) ─▶ framer.idle()
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { UsbMatch } from '../config/serial-schema.js';
import { Backoff } from '../core/backoff.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { LogRateLimiter } from '../observability/rate-limit.js';
import type { LineSettings, TransactOptions } from './driver-api.js';
import { idleTimeoutOf, type DiscardReason, type Framer, type FramingSpec } from './framer.js';
import { createFramer } from './framers/index.js';
import { describePort, resolvePort, type PortOpener } from './port.js';

export interface LinkEvents {
  opened(path: string): void;
  closed(reason: string): void;
  /** A frame no transaction was waiting for; `owner` is the device that last transacted. */
  frame(frame: Buffer, owner: string | undefined): void;
  discard(bytes: number, reason: DiscardReason, owner: string | undefined): void;
  /** A transaction got no answer in time. */
  timeout(owner: string): void;
}

export interface LinkSettings {
  port: string | UsbMatch;
  line: LineSettings;
  framing: FramingSpec;
  reopenBaseMs: number;
  reopenCapMs: number;
  /** Readings waiting for the bus before the port is paused. */
  maxPending: number;
}

export interface LinkDeps {
  opener: PortOpener;
  clock: Clock;
  log: Logger;
  limiter: LogRateLimiter;
  random?: () => number;
}

interface Transaction {
  owner: string;
  request: Buffer;
  opts: TransactOptions;
  resolve(frame: Buffer | undefined): void;
  timer?: TimerHandle;
  sentAt?: number;
}

/**
 * A device whose request went unanswered in time may still answer it late, and a late answer
 * looks like the answer to its next request (Modbus RTU carries no transaction id: same slave,
 * same function, same length). Until `until`, only the same request may be sent to it again
 * (a late answer to that one is a right answer); a different one waits, and what arrives
 * meanwhile is a stray frame, counted.
 */
interface LateAnswer {
  request: Buffer;
  until: number;
}

export type LinkState = 'idle' | 'opening' | 'open' | 'waiting' | 'stopped';

/** Modbus RTU §2.5.1.1: 3.5 character times of silence between frames; fixed 1.75 ms above 19200 baud. */
export function interFrameMs(line: LineSettings): number {
  if (line.baud > 19_200) return 2;
  const bits = 1 + line.dataBits + (line.parity === 'none' ? 0 : 1) + line.stopBits;
  return Math.ceil((3.5 * bits * 1000) / line.baud);
}

/** How often an open port's device node is checked (see watchPresence). */
const PRESENCE_CHECK_MS = 1000;

export class PortLink {
  state: LinkState = 'idle';
  private presenceTimer: TimerHandle | undefined;
  /** Times the port was opened again after it had been open. */
  reopens = 0;
  private stream: Duplex | undefined;
  private readonly framer: Framer;
  private readonly idleMs: number | undefined;
  private readonly backoff: Backoff;
  private idleTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private gapTimer: TimerHandle | undefined;
  private lateTimer: TimerHandle | undefined;
  private readonly late = new Map<string, LateAnswer>();
  private readonly queue: Transaction[] = [];
  private current: Transaction | undefined;
  private lastOwner: string | undefined;
  private everOpened = false;
  private healthy = false;
  private pendingCount = 0;
  private paused = false;
  private readonly gapMs: number;
  private readonly name: string;

  constructor(
    private readonly s: LinkSettings,
    private readonly deps: LinkDeps,
    private readonly events: LinkEvents,
  ) {
    this.name = describePort(s.port);
    this.framer = createFramer(s.framing, {
      frame: (f) => this.onFrame(f),
      discard: (n, reason) => this.events.discard(n, reason, this.current?.owner ?? this.lastOwner),
    });
    this.idleMs = idleTimeoutOf(s.framing);
    this.backoff = new Backoff(s.reopenBaseMs, s.reopenCapMs, deps.random);
    this.gapMs = interFrameMs(s.line);
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Readings handed to the bus and not yet settled. */
  get pending(): number {
    return this.pendingCount;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  start(): void {
    if (this.state !== 'idle') return;
    void this.open();
  }

  private async open(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'opening';
    let path: string | undefined;
    let stream: Duplex;
    try {
      path = await resolvePort(this.s.port, this.deps.opener);
      if (path === undefined) return this.retry('no matching USB adapter is plugged in');
      stream = await this.deps.opener.open(path, this.s.line);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EACCES' || e.code === 'EPERM' || /permission denied|operation not permitted/i.test(e.message)) {
        // The operator must act (error), and the link keeps retrying: the fix needs no restart.
        return this.retry(
          `no permission to open ${path ?? 'the serial port'}: add the user running outpost to group dialout ` +
            '(usermod -aG dialout USER, then restart outpost; the systemd unit has SupplementaryGroups=dialout)',
          'error',
        );
      }
      if (/cannot lock port/i.test(e.message)) {
        // serialport's lock (flock): a serial tool, Node-RED, a second outpost, or another
        // device of this config naming the same port by another path holds it.
        return this.retry(
          `${path ?? 'the serial port'} is in use by another program, or by another device of this config under another path ` +
            '(a /dev/serial/by-id/ link and its /dev/tty name are one port): stop that program or remove one of the two devices',
          'error',
        );
      }
      return this.retry(e.message);
    }
    if ((this.state as LinkState) === 'stopped') {
      stream.destroy();
      return;
    }
    this.stream = stream;
    this.openPath = path;
    this.state = 'open';
    this.healthy = false;
    if (this.everOpened) this.reopens++;
    this.everOpened = true;
    stream.on('data', this.onData);
    stream.on('error', this.onError);
    stream.once('close', this.onClose);
    this.deps.log.info({ path }, 'serial port open');
    this.events.opened(path);
    this.watchPresence(path, stream);
    this.pump();
  }

  /**
   * The stream's 'close' is the usual sign of a pulled adapter; a device node that is gone
   * is the sure one (udev removes it on unplug, devpts when a pty's other end closes). It is
   * checked every PRESENCE_CHECK_MS while the port is open.
   */
  private watchPresence(path: string, stream: Duplex): void {
    const present = this.deps.opener.present?.bind(this.deps.opener);
    if (present === undefined) return;
    this.presenceTimer = this.deps.clock.setInterval(() => {
      present(path).then(
        (here) => {
          if (here || this.stream !== stream) return;
          this.lastError = `${path} is gone (the adapter was unplugged)`;
          stream.destroy();
        },
        () => undefined, // a check that could not run says nothing; the next one tries again
      );
    }, PRESENCE_CHECK_MS);
  }

  private retry(reason: string, level: 'warn' | 'error' = 'warn'): void {
    if (this.state === 'stopped') return;
    this.state = 'waiting';
    const delay = this.backoff.next();
    const suppressed = this.deps.limiter.take(`open:${this.name}`);
    if (suppressed >= 0) {
      const fields = { reason, retryInMs: delay, ...(suppressed > 0 ? { suppressed } : {}) };
      if (level === 'error') this.deps.log.error(fields, `serial port unavailable, retrying: ${reason}`);
      else this.deps.log.warn(fields, 'serial port unavailable, retrying');
    }
    this.retryTimer = this.deps.clock.setTimeout(() => void this.open(), delay);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.framer.push(chunk);
    if (this.idleMs !== undefined) {
      this.idleTimer?.cancel();
      this.idleTimer = this.framer.buffered > 0 || this.s.framing.type === 'gap' ? this.deps.clock.setTimeout(() => this.framer.idle(), this.idleMs) : undefined;
    }
  };

  private lastError: string | undefined;
  /** The path the open stream belongs to (a USB match resolves to one at each open). */
  private openPath = '';

  private readonly onError = (err: Error): void => {
    this.lastError = err.message;
    // A port that errors is treated as lost: close it and let onClose schedule the reopen.
    this.stream?.destroy();
  };

  /**
   * serialport passes an error with `disconnected: true` when the device went away; its
   * message is the failed read's ("bad file descriptor" for a pty whose other end died), which
   * alone tells an operator nothing.
   */
  private readonly onClose = (err?: unknown): void => {
    const disconnected = err instanceof Error && (err as { disconnected?: unknown }).disconnected === true;
    const reason =
      this.lastError ??
      (disconnected ? `${this.openPath} was disconnected, as when the adapter is unplugged (${err.message})` : err instanceof Error ? err.message : 'port closed');
    this.lastError = undefined;
    this.detach();
    if (this.state === 'stopped') return;
    this.deps.log.warn({ reason }, 'serial port lost');
    this.events.closed(reason);
    this.retry(reason);
  };

  /** Drops the stream and everything tied to it; queued transactions get no answer. */
  private detach(): void {
    const s = this.stream;
    this.stream = undefined;
    if (s) {
      s.off('data', this.onData);
      s.off('error', this.onError);
      s.off('close', this.onClose);
      s.on('error', () => undefined); // a late error of a dead stream is not news
    }
    this.idleTimer?.cancel();
    this.gapTimer?.cancel();
    this.gapTimer = undefined;
    this.lateTimer?.cancel();
    this.lateTimer = undefined;
    this.late.clear();
    this.presenceTimer?.cancel();
    this.presenceTimer = undefined;
    this.framer.reset();
    this.paused = false;
    const waiting = [...(this.current ? [this.current] : []), ...this.queue.splice(0)];
    this.current = undefined;
    for (const t of waiting) {
      t.timer?.cancel();
      t.resolve(undefined);
    }
  }

  private onFrame(frame: Buffer): void {
    if (!this.healthy) {
      this.healthy = true;
      this.backoff.reset(); // a port that delivers frames is a good port again
    }
    const t = this.current;
    if (t !== undefined && t.opts.accept(frame)) return this.finish(t, frame);
    this.events.frame(frame, t?.owner ?? this.lastOwner);
  }

  write(data: Buffer): Promise<void> {
    const s = this.stream;
    if (s === undefined || this.state !== 'open') return Promise.reject(new Error('port is not open'));
    return new Promise((resolve, reject) => s.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** One request/response at a time per port; undefined on timeout or when the port closes. */
  transact(owner: string, request: Buffer, opts: TransactOptions): Promise<Buffer | undefined> {
    if (this.state !== 'open') return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.queue.push({ owner, request, opts, resolve });
      this.pump();
    });
  }

  private pump(): void {
    if (this.current !== undefined || this.gapTimer !== undefined || this.state !== 'open') return;
    const now = this.deps.clock.now();
    const i = this.queue.findIndex((q) => !this.mustWait(q, now));
    if (i < 0) return this.wakeAfterLate(now);
    const t = this.queue.splice(i, 1)[0]!;
    t.sentAt = now;
    this.current = t;
    this.lastOwner = t.owner;
    // Leftovers of an earlier answer must not be glued to this one.
    if (this.framer.buffered > 0) this.framer.idle();
    this.stream!.write(t.request);
    t.timer = this.deps.clock.setTimeout(() => {
      this.expectLate(t);
      this.events.timeout(t.owner);
      this.finish(t, undefined);
    }, t.opts.timeoutMs);
  }

  /** Whether `t` must wait for a late answer to an earlier, different request of its owner. */
  private mustWait(t: Transaction, now: number): boolean {
    const l = this.late.get(t.owner);
    if (l === undefined) return false;
    if (now >= l.until) {
      this.late.delete(t.owner);
      return false;
    }
    return !l.request.equals(t.request);
  }

  /** A late answer to `t` may come up to one more timeout after the first one ran out. */
  private expectLate(t: Transaction): void {
    const until = (t.sentAt ?? this.deps.clock.now()) + 2 * t.opts.timeoutMs;
    this.late.set(t.owner, { request: t.request, until: Math.max(until, this.late.get(t.owner)?.until ?? 0) });
  }

  private wakeAfterLate(now: number): void {
    this.lateTimer?.cancel();
    this.lateTimer = undefined;
    if (this.queue.length === 0) return;
    const at = Math.min(...this.queue.map((q) => this.late.get(q.owner)?.until ?? now));
    this.lateTimer = this.deps.clock.setTimeout(() => {
      this.lateTimer = undefined;
      this.pump();
    }, Math.max(0, at - now));
  }

  private finish(t: Transaction, frame: Buffer | undefined): void {
    if (this.current !== t) return;
    t.timer?.cancel();
    // An answer while a late one is expected may itself be that late one: this request's own
    // answer may still follow.
    if (frame !== undefined && this.late.has(t.owner)) this.expectLate(t);
    this.current = undefined;
    t.resolve(frame);
    this.gapTimer = this.deps.clock.setTimeout(() => {
      this.gapTimer = undefined;
      this.pump();
    }, this.gapMs);
  }

  /**
   * Counts a reading handed to the bus until its promise settles (the outbox committed it).
   * Past maxPending the port is paused: the kernel buffer fills and reading slows down,
   * instead of memory growing with a slow disk. Resumes at half.
   */
  track(settled: Promise<unknown>): void {
    this.pendingCount++;
    if (this.pendingCount >= this.s.maxPending && !this.paused && this.stream) {
      this.paused = true;
      this.stream.pause();
    }
    void settled.finally(() => {
      this.pendingCount--;
      if (this.paused && this.pendingCount <= this.s.maxPending >> 1) {
        this.paused = false;
        this.stream?.resume();
      }
    });
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.retryTimer?.cancel();
    const s = this.stream;
    this.detach();
    if (s && !s.closed) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.destroy();
      });
    }
  }
}
