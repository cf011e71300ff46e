import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { SystemdNotifier, type NotifySend } from '../../src/observability/systemd-notify.js';
import { FakeClock } from '../helpers/fake-clock.js';

interface Sent {
  socket: string;
  state: string[];
}

function setup(env: Record<string, string>, send?: NotifySend) {
  const clock = new FakeClock();
  const sent: Sent[] = [];
  const logs: { msg: string; level: number }[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const notifier = new SystemdNotifier({
    env,
    log,
    clock,
    pid: 4242,
    send: send ?? (async (socket, state) => void sent.push({ socket, state: [...state] })),
  });
  const pings = () => sent.filter((s) => s.state.includes('WATCHDOG=1')).length;
  return { clock, sent, logs, notifier, pings };
}

const flush = () => new Promise((r) => setImmediate(r));
const systemd = { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' };

describe('SystemdNotifier', () => {
  it('does nothing and starts no timer without NOTIFY_SOCKET', async () => {
    const { clock, sent, notifier } = setup({ WATCHDOG_USEC: '30000000' });
    expect(notifier.enabled).toBe(false);
    notifier.startWatchdog();
    await notifier.ready();
    await notifier.stopping();
    clock.advance(60_000);
    expect(sent).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('sends READY=1 with the main pid and a status, then STOPPING=1, to the socket in NOTIFY_SOCKET', async () => {
    const { sent, notifier } = setup({ NOTIFY_SOCKET: '@abstract/notify' });
    await notifier.ready('listening on mqtt://127.0.0.1:1883');
    await notifier.stopping();
    expect(sent).toEqual([
      { socket: '@abstract/notify', state: ['READY=1', 'MAINPID=4242', 'STATUS=listening on mqtt://127.0.0.1:1883'] },
      { socket: '@abstract/notify', state: ['STOPPING=1'] },
    ]);
  });

  it('pings the watchdog at once and then every WATCHDOG_USEC/2 while the loop runs on time', async () => {
    const { clock, notifier, pings } = setup(systemd);
    expect(notifier.pingIntervalMs).toBe(15_000);
    notifier.startWatchdog();
    await flush();
    expect(pings()).toBe(1);
    for (let i = 0; i < 4; i++) {
      clock.advance(15_000);
      await flush();
    }
    expect(pings()).toBe(5);
    expect(notifier.counts).toMatchObject({ pings: 5, withheld: 0 });
  });

  it('withholds the ping that follows an event-loop stall as long as the ping interval', async () => {
    const { clock, notifier, pings, logs } = setup(systemd);
    notifier.startWatchdog();
    await flush();
    clock.advance(10_000);
    clock.stall(20_000); // the loop was blocked: the timers fire once, late
    await flush();
    expect(pings()).toBe(1);
    expect(notifier.counts.withheld).toBe(1);
    expect(logs.some((l) => l.msg === 'event loop stalled, watchdog ping withheld')).toBe(true);
    clock.advance(15_000); // on time again
    await flush();
    expect(pings()).toBe(2);
  });

  it('still pings after a short stall well inside the ping interval', async () => {
    const { clock, notifier, pings } = setup(systemd);
    notifier.startWatchdog();
    await flush();
    clock.advance(5_000);
    clock.stall(2_000);
    clock.advance(15_000);
    await flush();
    expect(pings()).toBe(2);
    expect(notifier.counts.withheld).toBe(0);
  });

  it('reports how late its 1 s ticker ran as the event-loop lag', () => {
    const { clock, notifier } = setup(systemd);
    notifier.startWatchdog();
    clock.advance(1_000); // tick on time; the next is due at 2 s
    expect(notifier.eventLoopLagMs).toBe(0);
    clock.stall(3_500); // it runs at 4.5 s
    expect(notifier.eventLoopLagMs).toBe(2_500);
  });

  it('starts no watchdog when WATCHDOG_PID names another process', () => {
    const { clock, notifier } = setup({ ...systemd, WATCHDOG_PID: '1' });
    expect(notifier.pingIntervalMs).toBeUndefined();
    notifier.startWatchdog();
    expect(clock.pending).toBe(0);
  });

  it('does not send a second ping while the first is still waiting for systemd', async () => {
    let release!: () => void;
    let calls = 0;
    const { clock, notifier } = setup(systemd, () => {
      calls++;
      return new Promise<void>((r) => (release = r));
    });
    notifier.startWatchdog();
    clock.advance(45_000);
    expect(calls).toBe(1);
    release();
    await flush();
    clock.advance(15_000);
    expect(calls).toBe(2);
  });

  it('turns itself off with one warning when the systemd-notify command is missing', async () => {
    const missing = Object.assign(new Error('spawn systemd-notify ENOENT'), { code: 'ENOENT' });
    const { clock, notifier, logs } = setup(systemd, async () => Promise.reject(missing));
    notifier.startWatchdog();
    await flush();
    expect(notifier.enabled).toBe(false);
    expect(clock.pending).toBe(0);
    await notifier.ready();
    expect(logs.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
      'NOTIFY_SOCKET is set but the systemd-notify command is missing; install systemd or unset NOTIFY_SOCKET',
    ]);
  });

  it('logs a failed notification as a warning and never throws', async () => {
    const { notifier, logs } = setup(systemd, async () => Promise.reject(new Error('exit 1')));
    await expect(notifier.ready()).resolves.toBeUndefined();
    expect(notifier.counts.failures).toBe(1);
    expect(logs.some((l) => l.msg === 'systemd notification failed')).toBe(true);
  });

  it('stops every timer on close, and close is idempotent', () => {
    const { clock, notifier } = setup(systemd);
    notifier.startWatchdog();
    expect(clock.pending).toBe(2);
    notifier.close();
    notifier.close();
    expect(clock.pending).toBe(0);
  });
});
