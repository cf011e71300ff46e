/**
 * sd_notify through a real AF_UNIX datagram socket (NOTIFY_SOCKET) and the real
 * systemd-notify command, with the real clock and a really blocked event loop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { commandSender, SystemdNotifier } from '../../src/observability/systemd-notify.js';
import { hasCommand, startNotifyReceiver, type NotifyReceiver } from '../helpers/notify-receiver.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-notify-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const receivers: NotifyReceiver[] = [];
afterEach(() => {
  for (const r of receivers.splice(0)) r.kill();
});

const missing = ['systemd-notify', 'socat'].filter((c) => !hasCommand(c));
// .ci/run installs both; elsewhere the suite says why it did not run.
if (missing.length > 0) console.log(`sd_notify socket tests not run: ${missing.join(' and ')} not installed (apt-get install systemd socat)`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = pino({ level: 'silent' });

describe.skipIf(missing.length > 0)('sd_notify over a real NOTIFY_SOCKET', () => {
  it('sends READY, WATCHDOG pings at half WATCHDOG_USEC, withholds a ping after a blocked loop, then STOPPING', async () => {
    const rx = await startNotifyReceiver('socat', join(tmp, 'socat.sock'));
    receivers.push(rx);
    const notifier = new SystemdNotifier({
      env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '300000', WATCHDOG_PID: String(process.pid) },
      log,
      send: commandSender({ block: false }),
    });
    expect(notifier.pingIntervalMs).toBe(150);
    notifier.startWatchdog();
    await notifier.ready('test');
    await sleep(700);
    const before = notifier.counts.pings;
    expect(before).toBeGreaterThanOrEqual(3);

    const blockedUntil = Date.now() + 600; // the loop runs no timer, so it sends no ping
    while (Date.now() < blockedUntil) {
      // busy
    }
    await sleep(20);
    // At least the one ping due during the block; a loaded machine may stall more.
    expect(notifier.counts.withheld).toBeGreaterThanOrEqual(1);
    await sleep(400);
    expect(notifier.counts.pings).toBeGreaterThan(before); // pinging again once on time

    notifier.close();
    await sleep(200); // the last ping's systemd-notify may still be on its way
    await notifier.stopping();
    await rx.waitFor(/STOPPING=1/);
    // Each ping is its own systemd-notify process: give late ones time to land.
    for (let i = 0; i < 40 && (rx.text().match(/WATCHDOG=1/g)?.length ?? 0) < notifier.counts.pings; i++) await sleep(50);
    const text = rx.text();
    expect(text.startsWith('WATCHDOG=1') || text.startsWith('READY=1')).toBe(true);
    expect(text).toContain(`READY=1\nMAINPID=${process.pid}\nSTATUS=test`);
    expect(text.match(/WATCHDOG=1/g)).toHaveLength(notifier.counts.pings);
  });

  it.skipIf(!hasCommand('python3'))('waits, as systemd-notify does by default, until the receiver has processed the message', async () => {
    const rx = await startNotifyReceiver('python3', join(tmp, 'py.sock'));
    receivers.push(rx);
    const notifier = new SystemdNotifier({ env: { NOTIFY_SOCKET: rx.path }, log });
    const t0 = Date.now();
    await notifier.ready();
    await notifier.stopping();
    expect(Date.now() - t0).toBeLessThan(2000); // the barrier completed: no 5 s timeout
    expect(notifier.counts.failures).toBe(0);
    await rx.waitFor(/STOPPING=1/);
    expect(rx.datagrams()).toEqual([`READY=1\nMAINPID=${process.pid}`, 'BARRIER=1', 'STOPPING=1', 'BARRIER=1']);
  });
});
