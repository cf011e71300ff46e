/**
 * A metric name comes from the device (a JSON key); with a "{metric}" topic template an empty
 * key rendered to an empty topic, which the broker sent to mosquitto_sub, which dropped the
 * connection on it. On a real pty, seen by mosquitto_sub: such a reading is counted, the
 * subscriber stays connected and the readings around it arrive.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { MosquittoSub } from '../helpers/mosquitto-sub.js';
import { PtyLab } from '../helpers/pty.js';

let lab: PtyLab | undefined;
let gateway: Gateway | undefined;
let sub: MosquittoSub | undefined;
let dataDir: string | undefined;

afterEach(async () => {
  sub?.stop();
  sub = undefined;
  await gateway?.stop();
  gateway = undefined;
  await lab?.cleanup();
  lab = undefined;
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
});

describe('a device key that gives no valid topic', () => {
  it('is counted as a decode failure while mosquitto_sub stays connected and gets the readings around it', async () => {
    lab = new PtyLab();
    dataDir = mkdtempSync(join(tmpdir(), 'outpost-topic-guard-'));
    const pty = await lab.pty('ttyACM-json');
    const text = [
      'listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]',
      `store: { dir: ${JSON.stringify(dataDir)} }`,
      'serial:',
      '  devices:',
      `    - { id: hub, port: ${pty.path}, driver: line-json, topic: "{metric}" }`,
    ].join('\n');
    gateway = new Gateway(parseConfigText(text, 'guard.yaml'), { log: pino({ level: 'silent' }) });
    await gateway.start(new AbortController().signal);
    sub = new MosquittoSub(gateway.addresses[0]!.port, ['#', '$SYS/outpost/serial/+/state']);
    await sub.next('$SYS/outpost/serial/hub/state', (p) => p === 'online');

    await pty.write('{"a":1}\n{"":2}\n{"b":3}\n');
    await sub.next('b');
    expect(sub.on('a').map((p) => JSON.parse(p).value)).toEqual([1]);
    expect(sub.lines.filter((l) => l.topic === '')).toEqual([]);
    expect(gateway.serial.counters('hub')).toMatchObject({ readings: 3, published: 2, decode_failures: 1 });
  }, 20_000);
});
