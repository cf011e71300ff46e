/**
 * Session supervision as pure functions of a session and the time: which deadline is
 * next, and what is due when the session's one timer fires. Keep Alive (§6.11) and the
 * sleep Duration (§6.14) get 50% grace, as MQTT's keepalive does (MQTT 3.1.1 §3.1.2.10):
 * a sensor that sends exactly on its period must not be declared lost by jitter.
 */
import type { StampMover } from '../core/clock-steps.js';
import type { SnSession } from './session.js';

export const GRACE = 1.5;

export type Due = 'abandon-connect' | 'keepalive-expired' | 'sleep-expired' | 'not-back' | 'session-expired';

/**
 * A sleeping client (§6.14), asleep or awake, is lost only when it has been silent for its
 * sleep Duration (with grace), as any message counts for an active one's Keep Alive (§6.11):
 * one that woke late in its window and is still acknowledging its buffered messages, or one
 * that publishes a reading each Duration without waking first (its PUBLISH is answered), is
 * talking to us, and must not be declared lost (Will published).
 */
function sleeperDeadline(s: SnSession): number {
  return Math.max(s.sleepDeadline, s.lastSeen + s.sleepMs * GRACE);
}

/** The next moment something may be due for this session, or undefined for none. */
export function nextDeadline(s: SnSession): number | undefined {
  let d = s.connecting?.deadline;
  const min = (x: number) => {
    d = d === undefined ? x : Math.min(d, x);
  };
  if (s.state === 'active' && s.keepaliveMs > 0) min(s.lastSeen + s.keepaliveMs * GRACE);
  else if (s.state === 'asleep' || s.state === 'awake') min(sleeperDeadline(s));
  else if ((s.state === 'disconnected' || s.state === 'lost') && s.connecting === undefined) min(s.expiryDeadline);
  if (s.state === 'disconnected' && s.willDeadline !== undefined) min(s.willDeadline);
  return d;
}

/** What is due now; activity moves lastSeen without re-arming, so "nothing" is a normal answer. */
export function dueAt(s: SnSession, now: number): Due | undefined {
  if (s.connecting !== undefined && now >= s.connecting.deadline) return 'abandon-connect';
  if (s.state === 'active' && s.keepaliveMs > 0 && now >= s.lastSeen + s.keepaliveMs * GRACE) return 'keepalive-expired';
  if ((s.state === 'asleep' || s.state === 'awake') && now >= sleeperDeadline(s)) return 'sleep-expired';
  if (s.state === 'disconnected' && s.willDeadline !== undefined && now >= s.willDeadline) return 'not-back';
  if ((s.state === 'disconnected' || s.state === 'lost') && s.connecting === undefined && now >= s.expiryDeadline) return 'session-expired';
  return undefined;
}

/**
 * At the session limit, the oldest session nobody is connected to makes room (Map order is
 * age); failing that, an active client without Keep Alive (Duration 0: never supervised)
 * that has been silent for longer than `idleMs`; last, a session restored after a restart
 * that is still waiting for its client to come back (willDeadline: evicting it ends it
 * owing its Will).
 */
export function evictionCandidate(sessions: Iterable<SnSession>, now: number, idleMs: number): SnSession | undefined {
  let silent: SnSession | undefined;
  let awaited: SnSession | undefined;
  for (const s of sessions) {
    if ((s.state === 'disconnected' || s.state === 'lost') && s.connecting === undefined) {
      if (s.willDeadline === undefined) return s;
      awaited ??= s;
    }
    if (silent === undefined && s.state === 'active' && s.keepaliveMs === 0 && now - s.lastSeen > idleMs) silent = s;
  }
  return silent ?? awaited;
}

/**
 * The wall clock stepped (core/clock-steps.ts): every deadline and stamp of the session moves
 * with it, so a step does not end sessions early (or keep them late); its timer is monotonic
 * and needs nothing. Queued messages are moved once (they are shared with other subscribers).
 */
export function moveSessionStamps(s: SnSession, mover: StampMover): void {
  const d = mover.deltaMs;
  s.lastSeen += d;
  s.sleepDeadline += d;
  s.expiryDeadline += d;
  s.timerDue += d;
  s.pausedUntil += d;
  s.willDeadline = mover.at(s.willDeadline);
  if (s.connecting !== undefined) s.connecting.deadline += d;
  for (const item of s.queue) mover.message(item.msg);
  if (s.flight?.kind === 'publish') mover.message(s.flight.item.msg);
}
