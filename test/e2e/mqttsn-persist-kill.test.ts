/**
 * Persistent MQTT-SN sessions survive kill -9 of the real outpost process.
 *
 *   sensor (UDP, CleanSession 0): REGISTER its reading topic, SUBSCRIBE its command topic, sleep
 *   kill -9 at once ── restart on the same store.dir
 *   mosquitto_pub: a command for the sensor, acknowledged while the sensor is still asleep
 *   sensor wakes (PINGREQ) ─▶ DISCONNECT ─▶ CONNECT CleanSession 0 ─▶ the command arrives,
 *   and its reading on the topic id it registered before the crash is accepted
 *
 * And a command acknowledged to mosquitto_pub while the sensor slept, right before the
 * kill -9, reaches the sensor after the restart: its PUBACK meant it was on the disk. And a
 * sensor connected at the kill that never comes back is reported by its Will.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { MsgType } from '../../src/mqttsn/packets.js';
import { freePort } from '../helpers/free-port.js';
import { SnTestClient } from '../helpers/mqttsn-client.js';
import { OutpostProcess, writeProcessConfig } from '../helpers/outpost-process.js';

const run = promisify(execFile);
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await Promise.resolve(f()).catch(() => undefined);
});

/** A fresh store directory (removed after the test) and a config with an MQTT-SN listener on a free UDP port. */
async function snProcessConfig(): Promise<{ udpPort: number; file: string; port: number; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-sn-kill-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const udpPort = await freePort();
  return { udpPort, ...(await writeProcessConfig(dir, { mqttsn: { hosts: ['127.0.0.1'], port: udpPort, advertise: { interval: 0 } } })) };
}

/** The gateway registers the command topic with the sensor, then publishes the command; the sensor acknowledges both. */
async function receiveCommand(c: SnTestClient, topic: string, payload: string): Promise<{ qos: number }> {
  const reg = await c.next(MsgType.REGISTER);
  expect(reg.topicName).toBe(topic);
  c.send({ type: MsgType.REGACK, topicId: reg.topicId, msgId: reg.msgId, returnCode: 0 });
  const cmd = await c.next(MsgType.PUBLISH);
  expect(cmd.payload.toString()).toBe(payload);
  c.send({ type: MsgType.PUBACK, topicId: cmd.topicId, msgId: cmd.msgId, returnCode: 0 });
  return cmd;
}

describe('kill -9 of outpost with persistent MQTT-SN sessions', () => {
  it('gives a sleeping sensor the command published while it slept through the crash, and accepts its old topic id', async () => {
    const { udpPort, file, port, url } = await snProcessConfig();

    let outpost = await OutpostProcess.start(file);
    cleanups.push(() => outpost.kill9());
    const c1 = await SnTestClient.open({ port: udpPort });
    cleanups.push(() => c1.close());
    expect(await c1.connect('tank-4', { clean: false, duration: 30 })).toBe(0);
    const reg = await c1.register('site/tank-4/level');
    expect((await c1.subscribe('cmd/tank-4/#', 1)).returnCode).toBe(0);
    c1.send({ type: MsgType.DISCONNECT, duration: 300 });
    await c1.next(MsgType.DISCONNECT);
    // No grace period: REGACK and SUBACK came only once the session was committed.
    await outpost.crash();

    outpost = await OutpostProcess.start(file);
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', 'cmd/tank-4/valve', '-m', 'close']);

    const readings = mqtt.connect(url, { reconnectPeriod: 0 });
    cleanups.push(() => void readings.end(true));
    await readings.subscribeAsync('site/#', { qos: 1 });
    const got = new Promise<string>((resolve) => readings.on('message', (t, p) => resolve(`${t} ${p.toString()}`)));

    // The sensor wakes from a new source port (its old socket is gone, as after a NAT change).
    const c2 = await SnTestClient.open({ port: udpPort });
    cleanups.push(() => c2.close());
    c2.send({ type: MsgType.PINGREQ, clientId: 'tank-4' });
    await c2.next(MsgType.DISCONNECT);
    expect(await c2.connect('tank-4', { clean: false, duration: 30 })).toBe(0);
    await receiveCommand(c2, 'cmd/tank-4/valve', 'close');

    const msgId = c2.publish(reg.topicId, '73', { qos: 1 });
    expect((await c2.next(MsgType.PUBACK, 2000, (a) => a.msgId === msgId)).returnCode).toBe(0);
    expect(await got).toBe('site/tank-4/level 73');
    await outpost.stop();
  });

  it('delivers after the restart a command that was acknowledged to its publisher while the sensor slept, right before the kill', async () => {
    const { udpPort, file, port } = await snProcessConfig();

    let outpost = await OutpostProcess.start(file);
    cleanups.push(() => outpost.kill9());
    const c1 = await SnTestClient.open({ port: udpPort });
    cleanups.push(() => c1.close());
    expect(await c1.connect('gate-8', { clean: false, duration: 30 })).toBe(0);
    expect((await c1.subscribe('cmd/gate-8/#', 1)).returnCode).toBe(0);
    c1.send({ type: MsgType.DISCONNECT, duration: 300 });
    await c1.next(MsgType.DISCONNECT);
    // mosquitto_pub exits once it has the PUBACK; the kill follows at once.
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', 'cmd/gate-8/bar', '-m', 'raise']);
    await outpost.crash();

    outpost = await OutpostProcess.start(file);
    const c2 = await SnTestClient.open({ port: udpPort });
    cleanups.push(() => c2.close());
    expect(await c2.connect('gate-8', { clean: false, duration: 30 })).toBe(0);
    expect((await receiveCommand(c2, 'cmd/gate-8/bar', 'raise')).qos).toBe(1);
    await outpost.stop();
  });

  it('publishes the Will of a sensor that was connected at the kill and does not come back within 1.5 × its Keep Alive, and none for one that had disconnected', async () => {
    const { udpPort, file, url } = await snProcessConfig();

    let outpost = await OutpostProcess.start(file);
    cleanups.push(() => outpost.kill9());
    const pump = await SnTestClient.open({ port: udpPort });
    cleanups.push(() => pump.close());
    expect(await pump.connect('pump-9', { clean: false, duration: 2, will: { topic: 'status/pump-9', payload: 'offline', qos: 1, retain: true } })).toBe(0);
    const valve = await SnTestClient.open({ port: udpPort });
    cleanups.push(() => valve.close());
    expect(await valve.connect('valve-2', { clean: false, duration: 2, will: { topic: 'status/valve-2', payload: 'offline', qos: 1 } })).toBe(0);
    valve.send({ type: MsgType.DISCONNECT, duration: undefined });
    await valve.next(MsgType.DISCONNECT); // answered once stored: the kill may follow at once
    await outpost.crash();
    await pump.close(); // the pump died with the power cut

    outpost = await OutpostProcess.start(file);
    const restarted = Date.now();
    const dashboard = mqtt.connect(url, { reconnectPeriod: 0 });
    cleanups.push(() => void dashboard.end(true));
    const wills: Array<{ text: string; after: number }> = [];
    dashboard.on('message', (t, p) => wills.push({ text: `${t} ${p.toString()}`, after: Date.now() - restarted }));
    await dashboard.subscribeAsync('status/#', { qos: 1 });
    const deadline = Date.now() + 10_000;
    while (wills.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1000)); // anything else would come with it
    expect(wills.map((w) => w.text)).toEqual(['status/pump-9 offline']);
    expect(wills[0]!.after).toBeGreaterThanOrEqual(2000); // not before 1.5 × 2 s of the restart
    await outpost.stop();
  });
});
