import { describe, expect, it } from 'vitest';
import { canSend, transition, type ClientEvent, type ClientState } from '../../src/mqttsn/client-state.js';

const states: ClientState[] = ['disconnected', 'active', 'asleep', 'awake', 'lost'];
const events: ClientEvent[] = ['connect', 'disconnect', 'sleep', 'wake', 'flushed', 'keepalive-expired', 'sleep-expired', 'retries-exhausted', 'address-reused', 'not-back'];

const LOSE = 'lost: stop-timer, publish-will, hold';

/** Expected outcome per state (rows) and event (columns); '-' means the event is ignored. */
const table: Record<ClientState, Record<ClientEvent, string>> = {
  disconnected: {
    connect: 'active: arm-keepalive, deliver-buffered',
    disconnect: '-',
    sleep: '-',
    wake: '-',
    flushed: '-',
    'keepalive-expired': '-',
    'sleep-expired': '-',
    'retries-exhausted': '-',
    'address-reused': '-',
    'not-back': LOSE,
  },
  active: {
    connect: 'active: arm-keepalive, deliver-buffered',
    disconnect: 'disconnected: stop-timer, hold',
    sleep: 'asleep: arm-sleep, hold',
    wake: '-',
    flushed: '-',
    'keepalive-expired': LOSE,
    'sleep-expired': '-',
    'retries-exhausted': LOSE,
    'address-reused': LOSE,
    'not-back': '-',
  },
  asleep: {
    connect: 'active: arm-keepalive, deliver-buffered',
    disconnect: 'disconnected: stop-timer, hold',
    sleep: 'asleep: arm-sleep, hold',
    wake: 'awake: deliver-buffered',
    flushed: '-',
    'keepalive-expired': '-',
    'sleep-expired': LOSE,
    'retries-exhausted': '-',
    'address-reused': '-',
    'not-back': '-',
  },
  awake: {
    connect: 'active: arm-keepalive, deliver-buffered',
    disconnect: 'disconnected: stop-timer, hold',
    sleep: 'asleep: arm-sleep, hold',
    wake: 'awake: ',
    flushed: 'asleep: send-pingresp, arm-sleep, hold',
    'keepalive-expired': '-',
    'sleep-expired': LOSE,
    'retries-exhausted': LOSE,
    'address-reused': 'asleep: arm-sleep, hold',
    'not-back': '-',
  },
  lost: {
    connect: 'active: arm-keepalive, deliver-buffered',
    disconnect: 'disconnected: stop-timer, hold',
    sleep: '-',
    wake: '-',
    flushed: '-',
    'keepalive-expired': '-',
    'sleep-expired': '-',
    'retries-exhausted': '-',
    'address-reused': '-',
    'not-back': '-',
  },
};

describe('MQTT-SN client state machine (§6.14 Figure 4)', () => {
  for (const state of states) {
    for (const event of events) {
      const expected = table[state][event];
      it(`${state} + ${event} → ${expected === '-' ? 'ignored' : expected}`, () => {
        const t = transition(state, event);
        expect(t === undefined ? '-' : `${t.state}: ${t.actions.join(', ')}`).toBe(expected);
      });
    }
  }

  it('sends to active and awake clients only; the others are buffered for', () => {
    expect(states.filter(canSend)).toEqual(['active', 'awake']);
  });

  it('publishes the Will only on the way to lost, never on DISCONNECT', () => {
    for (const state of states) {
      for (const event of events) {
        const t = transition(state, event);
        if (t?.actions.includes('publish-will')) expect(t.state).toBe('lost');
      }
      expect(transition(state, 'disconnect')?.actions ?? []).not.toContain('publish-will');
    }
  });
});
