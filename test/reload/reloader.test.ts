/**
 * The Reloader: real config files read by the real loader, real pino logs, and reload steps
 * that record what they were given (the step interface is the injection point).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { logLevelStep } from '../../src/reload/log-level-step.js';
import { Reloader } from '../../src/reload/reloader.js';
import type { ReloadStep } from '../../src/reload/step.js';
import { SystemdNotifier } from '../../src/observability/systemd-notify.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-reloader-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

interface Line { level: number; msg: string; [k: string]: unknown }

function rig(initialYaml: string, steps: ReloadStep[] = []) {
  const file = join(tmp, `outpost-${n++}.yaml`);
  writeFileSync(file, initialYaml);
  const lines: Line[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Line) });
  const events: string[] = [];
  const seen: { next: Config; prev: Config }[] = [];
  const recorder: ReloadStep = {
    name: 'recorder',
    covers: [],
    async apply(next, prev) {
      seen.push({ next, prev });
      events.push('apply');
      return { changes: ['recorded'] };
    },
  };
  const reloader = new Reloader({
    load: () => loadConfig(file),
    running: loadConfig(file),
    steps: [...steps, recorder],
    log,
    notifier: { reloading: async () => void events.push('RELOADING'), ready: async (status) => void events.push(status === 'config reloaded' ? 'READY' : `READY (${status})`) },
  });
  reloader.started();
  return { file, lines, log, events, seen, reloader, write: (yaml: string) => writeFileSync(file, yaml) };
}

describe('reloader', () => {
  it('applies a valid new config through every step, between RELOADING and READY', async () => {
    const r = rig('bridges: []\n');
    r.write('bridges: []\nserial: { stats_interval: 5m }\n');
    const outcome = await r.reloader.request();
    expect(outcome).toEqual({ status: 'applied', changes: ['recorded'], restartNeeded: [] });
    expect(r.events).toEqual(['RELOADING', 'apply', 'READY']);
    expect(r.seen[0]!.next.serial.stats_interval).toBe(300_000);
    expect(r.seen[0]!.prev.serial.stats_interval).toBe(60_000);
    expect(r.reloader.config.serial.stats_interval).toBe(300_000);
    expect(r.lines.at(-1)).toMatchObject({ msg: 'config reloaded', changes: ['recorded'] });
  });

  it('rejects a broken file with its FILE:LINE:COL sentence, applies nothing and keeps the running config', async () => {
    const r = rig('serial: { stats_interval: 30s }\n');
    r.write('serial:\n  stats_interval: 30s\n  max_pending: lots\n');
    const outcome = await r.reloader.request();
    expect(outcome.status).toBe('rejected');
    expect(r.seen).toEqual([]);
    expect(r.events).toEqual(['RELOADING', 'READY (config not reloaded; the previous one is running)']);
    const error = r.lines.find((l) => l.level === 50)!;
    expect(error.msg).toBe(`config not reloaded, the running config stays: ${r.file}:3:16 serial.max_pending: expected a number, got "lots"`);
    expect(r.reloader.config.serial.stats_interval).toBe(30_000);
  });

  it('rejects a missing device map file and a YAML syntax error the same way', async () => {
    const r = rig('');
    r.write('serial:\n  include: [nowhere.yaml]\n');
    expect(await r.reloader.request()).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/:2:13 serial\.include\[0\]: cannot read device map file .*nowhere\.yaml \(ENOENT\)/) });
    r.write('serial: [\n');
    expect(await r.reloader.request()).toMatchObject({ status: 'rejected', reason: expect.stringContaining(`${r.file}:2:1 invalid YAML`) });
    expect(r.seen).toEqual([]);
    expect(r.reloader.counts).toEqual({ runs: 2, rejected: 2 });
  });

  it('logs one line per restart-only setting and hands the steps the running value', async () => {
    const r = rig('listeners: [{ type: mqtt, host: 127.0.0.1, port: 1883 }]\nstore: { dir: ./a }\n');
    r.write('listeners: [{ type: mqtt, host: 127.0.0.1, port: 1999 }]\nstore: { dir: ./b }\nlog: { level: warn }\n');
    const outcome = await r.reloader.request();
    expect(outcome).toMatchObject({ status: 'applied', restartNeeded: ['listeners', 'store'] });
    expect(r.lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
      'listeners changed: needs a restart (systemctl restart outpost); keeping the running value',
      'store changed: needs a restart (systemctl restart outpost); keeping the running value',
    ]);
    expect(r.seen[0]!.next.listeners[0]!.port).toBe(1883);
    expect(r.seen[0]!.next.store.dir).toBe('./a');
    expect(r.seen[0]!.next.log.level).toBe('warn');
  });

  it('re-reads the included device map files, so a device added there reaches the steps', async () => {
    const map = join(tmp, `devices-${n}.yaml`);
    writeFileSync(map, 'devices:\n  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }\n');
    const r = rig(`serial:\n  include: [${JSON.stringify(map)}]\n`);
    writeFileSync(map, 'devices:\n  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }\n  - { id: meter, port: /dev/ttyUSB1, driver: line-kv }\n');
    await r.reloader.request();
    expect(r.seen[0]!.prev.serial.devices.map((d) => d.id)).toEqual(['boiler']);
    expect(r.seen[0]!.next.serial.devices.map((d) => d.id)).toEqual(['boiler', 'meter']);
  });

  it('logs a step that fails half-way and still applies the other steps', async () => {
    const failing: ReloadStep = { name: 'bridges', covers: [], apply: async () => { throw new Error('database is locked'); } };
    const r = rig('', [failing]);
    expect(await r.reloader.request()).toMatchObject({ status: 'applied', changes: ['recorded'] });
    expect(r.lines.find((l) => l.level === 50)?.msg).toBe('reload of bridges incomplete: database is locked; what it did not apply keeps running as before');
    expect(r.seen).toHaveLength(1);
  });

  it('runs once more after the one in progress however many reloads were asked for meanwhile', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let applies = 0;
    const slow: ReloadStep = { name: 'slow', covers: [], apply: async () => (applies++ === 0 && (await gate), { changes: [] }) };
    const r = rig('', [slow]);
    const first = r.reloader.request();
    await new Promise((res) => setTimeout(res, 10));
    const later = [r.reloader.request(), r.reloader.request(), r.reloader.request()];
    release();
    await Promise.all([first, ...later]);
    expect(applies).toBe(2);
    expect(r.events).toEqual(['RELOADING', 'apply', 'READY', 'RELOADING', 'apply', 'READY']);
  });

  it('waits for the gateway to be up before running a reload asked for during start-up', async () => {
    const file = join(tmp, 'early.yaml');
    writeFileSync(file, '');
    let loads = 0;
    const reloader = new Reloader({ load: () => (loads++, loadConfig(file)), running: loadConfig(file), steps: [], log: pino({ level: 'silent' }) });
    const outcome = reloader.request();
    await new Promise((res) => setTimeout(res, 10));
    expect(loads).toBe(0);
    reloader.started();
    expect(await outcome).toMatchObject({ status: 'applied' });
    expect(loads).toBe(1);
  });

  it('lets close() wait for the reload in progress, and refuses reloads afterwards', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let done = false;
    const slow: ReloadStep = { name: 'slow', covers: [], apply: async () => (await gate, (done = true), { changes: [] }) };
    const r = rig('', [slow]);
    void r.reloader.request();
    await new Promise((res) => setTimeout(res, 10));
    const closing = r.reloader.close();
    setTimeout(release, 20);
    await closing;
    expect(done).toBe(true);
    expect(await r.reloader.request()).toEqual({ status: 'closed' });
  });

  it('changes the log level of the root logger and of the children made from it', async () => {
    const r = rig('log: { level: info }\n');
    const step = logLevelStep(r.log);
    const child = r.log.child({ component: 'bridge' });
    const prev = r.reloader.config;
    r.write('log: { level: debug }\n');
    expect(await step.apply(loadConfig(r.file), prev)).toEqual({ changes: ['log level info → debug'] });
    child.debug('now visible');
    expect(r.lines.at(-1)).toMatchObject({ level: 20, msg: 'now visible', component: 'bridge' });
  });
});

describe('systemd notifier around a reload', () => {
  it('sends RELOADING=1 with MONOTONIC_USEC, then READY=1', async () => {
    const sent: string[][] = [];
    const notifier = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/run/test.sock' }, log: pino({ level: 'silent' }), send: async (_s, a) => void sent.push([...a]), pid: 42 });
    await notifier.reloading();
    await notifier.ready('reloaded');
    expect(sent[0]![0]).toBe('RELOADING=1');
    expect(sent[0]![1]).toMatch(/^MONOTONIC_USEC=\d+$/);
    expect(sent[1]).toEqual(['READY=1', 'MAINPID=42', 'STATUS=reloaded']);
  });

  it('stays silent without NOTIFY_SOCKET', async () => {
    const sent: string[][] = [];
    const notifier = new SystemdNotifier({ env: {}, log: pino({ level: 'silent' }), send: async (_s, a) => void sent.push([...a]) });
    await notifier.reloading();
    expect(sent).toEqual([]);
  });
});
