/**
 * End to end on real serial ports: socat pseudo-terminals opened by serialport inside a real
 * Gateway, an independent mosquitto_sub checking the topics over TCP, mosquitto_pub sending
 * commands. Unplugging is killing socat by pid.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { freePort } from '../helpers/gateway-fixture.js';
import { MosquittoSub } from '../helpers/mosquitto-sub.js';
import { PtyLab } from '../helpers/pty.js';

const sample = (p: string) => readFileSync(new URL(`../../drivers/${p}`, import.meta.url));

let lab: PtyLab;
let gateway: Gateway | undefined;
let sub: MosquittoSub | undefined;
let dataDir: string;

afterEach(async () => {
  sub?.stop();
  sub = undefined;
  await gateway?.stop();
  gateway = undefined;
  await lab.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

function start(): void {
  lab = new PtyLab();
  dataDir = mkdtempSync(join(tmpdir(), 'outpost-serial-e2e-'));
}

async function gatewayWith(devices: string[], extra: string[] = []): Promise<number> {
  const text = [
    'listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]',
    `store: { dir: ${JSON.stringify(dataDir)} }`,
    ...extra,
    'serial:',
    '  reopen: { base: 100ms, cap: 400ms }',
    '  devices:',
    ...devices.map((d) => `    - ${d}`),
  ].join('\n');
  gateway = new Gateway(parseConfigText(text, 'e2e.yaml'), { log: pino({ level: 'silent' }) });
  await gateway.start(new AbortController().signal);
  return gateway.addresses[0]!.port;
}

const STATE = (id: string) => `$SYS/outpost/serial/${id}/state`;

describe('serial devices on real ptys, seen by mosquitto_sub', () => {
  it('streams a captured line-json sample to the mapped topics, and survives the adapter being pulled and plugged back', async () => {
    start();
    const pty = await lab.pty('usb-FTDI_boiler-if00-port0');
    const port = await gatewayWith([`{ id: boiler, port: ${pty.path}, baud: 115200, driver: line-json, qos: 1, metrics: { temp: { scale: 0.1, unit: "°C" } } }`]);
    sub = new MosquittoSub(port, ['sensors/#', '$SYS/outpost/serial/+/state']);
    await sub.next(STATE('boiler'), (p) => p === 'online');

    await pty.write(sample('line-json/sample.jsonl'));
    await sub.wait(() => sub!.on('sensors/boiler/temp').length === 3, 'three temperatures');
    expect(sub.on('sensors/boiler/temp').map((p) => JSON.parse(p))).toMatchObject([
      { value: 21.5, unit: '°C' },
      { value: 21.6, unit: '°C' },
      { value: 21.6, unit: '°C' },
    ]);
    expect(sub.on('sensors/boiler/env.pressure').map((p) => JSON.parse(p).value)).toEqual([1013.2]);

    // Waits return as soon as the state shows; the bound is wide because a loaded CI machine
    // once took over 5 s to see the pty go away.
    await pty.unplug();
    await sub.wait(() => sub!.on(STATE('boiler')).at(-1) === 'offline', 'offline after the unplug', 15_000);
    await pty.plug();
    await sub.wait(() => sub!.on(STATE('boiler')).filter((s) => s === 'online').length === 2, 'online again after the replug', 15_000);
    await pty.write('{"temp":300}\n');
    await sub.wait(() => sub!.on('sensors/boiler/temp').length === 4, 'a reading after the replug');
    expect(gateway!.serial.counters('boiler')).toMatchObject({ reopens: 1, readings: 11 });
  }, 45_000);

  it('passes a mosquitto_pub command to the device and publishes the result', async () => {
    start();
    const pty = await lab.pty('ttyArduino');
    const port = await gatewayWith([`{ id: relay, port: ${pty.path}, driver: line-kv, command_topic: "cmd/{device}" }`]);
    sub = new MosquittoSub(port, ['cmd/#', '$SYS/outpost/serial/+/state']);
    await sub.next(STATE('relay'), (p) => p === 'online');
    await promisify(execFile)('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', 'cmd/relay', '-m', 'relay=on']);
    await pty.waitReceived('relay=on\n');
    expect((await sub.next('cmd/relay/result')).payload).toBe('{"ok":true}');
  });

  it('keeps a GPS streaming while another port floods garbage, counting and dropping the garbage', async () => {
    start();
    const gps = await lab.pty('ttyGPS');
    const noisy = await lab.pty('ttyNoise');
    const port = await gatewayWith([
      `{ id: gps, port: ${gps.path}, driver: nmea, baud: 9600, metrics: { latitude: { deadband: 0 } } }`,
      `{ id: noisy, port: ${noisy.path}, driver: line-json, options: { max_line: 256 } }`,
    ]);
    sub = new MosquittoSub(port, ['sensors/#', '$SYS/outpost/serial/+/state']);
    await sub.wait(() => sub!.lines.filter((l) => l.payload === 'online').length === 2, 'both devices online');
    const junk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919) % 251; // no "\n" for long stretches
    const flood = (async () => {
      for (let i = 0; i < 16; i++) await noisy.write(junk); // 1 MiB of garbage
      await noisy.write('\n{"ok":1}\n');
    })();
    await gps.write(sample('nmea/sample.nmea'));
    await flood;
    await sub.next('sensors/noisy/ok');
    await sub.wait(() => sub!.on('sensors/gps/altitude').length === 3, 'three GGA altitudes');
    expect(sub.on('sensors/gps/satellites').map((p) => JSON.parse(p).value)).toEqual([0, 8, 8, 8]);
    expect(sub.on('sensors/gps/latitude')).toHaveLength(1); // deadband 0: unchanged positions are held back
    const noise = gateway!.serial.counters('noisy')!;
    expect(noise.discarded_bytes + noise.decode_failures).toBeGreaterThan(0);
    expect(gateway!.serial.counters('gps')).toMatchObject({ decode_failures: 0, checksum_failures: 0, discarded_bytes: 0 });
  });

  it('commits every bridged reading to the SQLite outbox before reading on (the cloud is unreachable)', async () => {
    start();
    const pty = await lab.pty('ttyMeter');
    const closed = await freePort();
    const port = await gatewayWith([`{ id: meter, port: ${pty.path}, driver: line-kv }`], ['bridges:', `  - { name: cloud, url: "mqtt://127.0.0.1:${closed}", rules: [{ pattern: "sensors/#" }] }`]);
    sub = new MosquittoSub(port, ['$SYS/outpost/serial/+/state']);
    await sub.next(STATE('meter'), (p) => p === 'online');
    let text = '';
    for (let i = 0; i < 500; i++) text += `kwh=${i} w=${i * 2}\n`;
    await pty.write(text);
    const deadline = Date.now() + 5000;
    while (gateway!.bridges[0]!.backlog().rows < 1000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(gateway!.bridges[0]!.backlog().rows).toBe(1000);
    expect(gateway!.serial.counters('meter')).toMatchObject({ readings: 1000, published: 1000, publish_failures: 0 });
  });
});
