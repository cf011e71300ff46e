import { describe, expect, it } from 'vitest';
import { SnSession } from '../../src/mqttsn/session.js';
import { dueAt, evictionCandidate, nextDeadline } from '../../src/mqttsn/supervision.js';

function session(over: Partial<SnSession>): SnSession {
  return Object.assign(new SnSession('c', 10), over);
}

describe('MQTT-SN session supervision', () => {
  it.each([
    ['an active client within 1.5 × Keep Alive', { state: 'active', keepaliveMs: 10_000, lastSeen: 0 }, 14_999, undefined, 15_000],
    ['an active client silent for 1.5 × Keep Alive', { state: 'active', keepaliveMs: 10_000, lastSeen: 0 }, 15_000, 'keepalive-expired', 15_000],
    ['an active client with Keep Alive 0', { state: 'active', keepaliveMs: 0, lastSeen: 0 }, 1e12, undefined, undefined],
    ['a sleeper before its deadline', { state: 'asleep', sleepDeadline: 90_000 }, 89_999, undefined, 90_000],
    ['a sleeper past its deadline', { state: 'asleep', sleepDeadline: 90_000 }, 90_000, 'sleep-expired', 90_000],
    ['an awake client past its sleep deadline', { state: 'awake', sleepDeadline: 5 }, 6, 'sleep-expired', 5],
    ['a lost session past its expiry', { state: 'lost', expiryDeadline: 100 }, 100, 'session-expired', 100],
    ['a disconnected session before its expiry', { state: 'disconnected', expiryDeadline: 100 }, 99, undefined, 100],
    ['a CONNECT whose Will prompts timed out', { state: 'disconnected', connecting: { stage: 'topic', deadline: 50 } }, 50, 'abandon-connect', 50],
  ] as const)('%s', (_name, over, now, due, deadline) => {
    const s = session(over as Partial<SnSession>);
    expect(dueAt(s, now)).toBe(due);
    expect(nextDeadline(s)).toBe(deadline);
  });

  it('evicts the oldest session nobody is connected to, never an active or connecting one', () => {
    const list = [
      session({ state: 'active' }),
      session({ state: 'disconnected', connecting: { stage: 'topic', deadline: 1, cleanSession: true, keepaliveMs: 0 } }),
      session({ state: 'asleep' }),
      session({ state: 'lost' }),
      session({ state: 'disconnected' }),
    ];
    expect(evictionCandidate(list, 0, 1000)).toBe(list[3]);
    expect(evictionCandidate(list.slice(0, 3), 0, 1000)).toBeUndefined();
  });

  it('evicts a session still awaited after a restart only when nothing else can make room', () => {
    const awaited = session({ state: 'disconnected', willDeadline: 5_000 });
    const ghost = session({ state: 'active', keepaliveMs: 0, lastSeen: 0 });
    const gone = session({ state: 'disconnected' });
    expect(evictionCandidate([awaited, ghost, gone], 2_000, 1000)).toBe(gone);
    expect(evictionCandidate([awaited, ghost], 2_000, 1000)).toBe(ghost);
    expect(evictionCandidate([awaited], 2_000, 1000)).toBe(awaited);
  });

  it('falls back to an active client without Keep Alive that has been silent longer than the idle bound', () => {
    const ghost = session({ state: 'active', keepaliveMs: 0, lastSeen: 0 });
    const supervised = session({ state: 'active', keepaliveMs: 10_000, lastSeen: 0 });
    expect(evictionCandidate([supervised, ghost], 1000, 5000)).toBeUndefined();
    expect(evictionCandidate([supervised, ghost], 5001, 5000)).toBe(ghost);
  });
});
