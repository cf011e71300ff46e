/**
 * End to end through the real composition root: an MQTT-SN sensor over UDP, outpost, and
 * the mosquitto command line clients over TCP on the same gateway.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { MsgType } from '../../src/mqttsn/packets.js';
import { silentLog } from '../helpers/broker-harness.js';
import { within } from '../helpers/gateway-fixture.js';
import { SnTestClient } from '../helpers/mqttsn-client.js';

let gw: Gateway;
let dir: string;
let tcpPort: number;
let udpPort: number;
const clients: SnTestClient[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-sn-e2e-'));
  const yaml = [
    'listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]',
    `store: { dir: ${JSON.stringify(join(dir, 'data'))} }`,
    'mqttsn: { hosts: [127.0.0.1], port: 0, advertise: { interval: 0 } }',
  ].join('\n');
  gw = new Gateway(parseConfigText(yaml, 'e2e.yaml'), { log: silentLog });
  await gw.start(new AbortController().signal);
  tcpPort = gw.addresses[0]!.port;
  udpPort = gw.mqttsn!.addresses[0]!.port;
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await within(gw.stop(), 5000, 'the gateway to stop');
  rmSync(dir, { recursive: true, force: true });
});

async function sensor(): Promise<SnTestClient> {
  const c = await SnTestClient.open({ port: udpPort });
  clients.push(c);
  return c;
}

describe('MQTT-SN end to end with mosquitto clients', () => {
  it('a sensor publish reaches mosquitto_sub on the local broker', async () => {
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(tcpPort), '-t', 'sensors/#', '-v', '-C', '1', '-q', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    sub.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => sub.once('close', resolve));
    const c = await sensor();
    expect(await c.connect('temp-17')).toBe(0);
    const { topicId } = await c.register('sensors/temp-17/celsius');
    // mosquitto_sub does not say when it is subscribed (its output is block-buffered on a
    // pipe): the sensor publishes its reading until mosquitto_sub (-C 1) got one and exits.
    let done = false;
    void exited.then(() => (done = true));
    try {
      while (!done) {
        c.publish(topicId, '21.5', { qos: 1 });
        await c.next(MsgType.PUBACK);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await within(exited, 5000, 'mosquitto_sub to print the message and exit')).toBe(0);
      expect(out.trim()).toBe('sensors/temp-17/celsius 21.5');
    } finally {
      sub.kill('SIGKILL');
    }
  });

  it('a mosquitto_pub message reaches a sleeping sensor when it wakes up', async () => {
    const c = await sensor();
    await c.connect('valve-3', { clean: false, duration: 60 });
    const ack = await c.subscribe('cmd/valve-3', 1);
    c.send({ type: MsgType.DISCONNECT, duration: 300 });
    await c.next(MsgType.DISCONNECT);
    const pub = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tcpPort), '-t', 'cmd/valve-3', '-m', 'open', '-q', '1'], { stdio: 'ignore' });
    const code = new Promise<number | null>((resolve) => pub.once('close', resolve));
    expect(await within(code, 5000, 'mosquitto_pub to exit')).toBe(0);
    expect(await c.none(MsgType.PUBLISH, 200)).toBe(true);
    c.send({ type: MsgType.PINGREQ, clientId: 'valve-3' });
    const p = await c.next(MsgType.PUBLISH);
    expect(p).toMatchObject({ qos: 1, topicId: ack.topicId });
    expect(p.payload.toString()).toBe('open');
    c.send({ type: MsgType.PUBACK, topicId: p.topicId, msgId: p.msgId, returnCode: 0 });
    await c.next(MsgType.PINGRESP);
  });
});
