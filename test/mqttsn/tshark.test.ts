/**
 * An independent check of our encoder: Wireshark's MQTT-SN dissector (tshark) decodes a
 * live capture of a test run on the loopback interface. Opt-in: skipped, with the reason
 * printed, when tshark is not installed (apt-get install -y tshark) or cannot capture.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../src/mqttsn/packets.js';
import { startSnGateway } from '../helpers/mqttsn-gateway.js';

const hasTshark = spawnSync('tshark', ['-v'], { stdio: 'ignore' }).status === 0;
if (!hasTshark) console.warn('tshark is not installed: the MQTT-SN tshark decode test is skipped (apt-get install -y tshark to run it)');

describe.skipIf(!hasTshark)('MQTT-SN datagrams as tshark decodes them', () => {
  it('decodes every message the gateway sent, with the types and lengths our client saw', async (ctx) => {
    const h = await startSnGateway('predefined_topics: { 5: pre/five }');
    const dir = mkdtempSync(join(tmpdir(), 'outpost-tshark-'));
    const file = join(dir, 'run.pcapng');
    try {
      const cap = spawn('tshark', ['-i', 'lo', '-f', `udp port ${h.port}`, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      const started = await new Promise<boolean>((resolve) => {
        cap.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('Capturing on')) resolve(true);
        });
        cap.once('close', () => resolve(false));
        setTimeout(() => resolve(false), 10_000);
      });
      if (!started) {
        cap.kill('SIGKILL');
        console.warn(`tshark cannot capture on lo here, test skipped: ${err.trim()}`);
        return ctx.skip();
      }
      await new Promise((r) => setTimeout(r, 300));
      const c = await h.client({ autoAck: true });
      await c.connect('tshark-1', { will: { topic: 'w/t', payload: 'bye', qos: 1 } });
      const { topicId } = await c.register('t/long');
      c.publish(topicId, Buffer.alloc(300, 0x41), { qos: 1 });
      await c.next(MsgType.PUBACK);
      c.publish(5, 'q2', { qos: 2, topicIdType: 1 });
      const rec = await c.next(MsgType.PUBREC);
      c.send({ type: MsgType.PUBREL, msgId: rec.msgId });
      await c.next(MsgType.PUBCOMP);
      await c.subscribe('down/#', 1);
      h.broker.publish({ topic: 'down/x', payload: Buffer.alloc(260, 0x42), qos: 1, retain: false, origin: { kind: 'system', id: 't' } });
      await c.next(MsgType.PUBLISH);
      c.send({ type: MsgType.WILLTOPICUPD, qos: 0, retain: false, topic: 'w/u' });
      await c.next(MsgType.WILLTOPICRESP);
      c.send({ type: MsgType.WILLMSGUPD, payload: Buffer.from('m') });
      await c.next(MsgType.WILLMSGRESP);
      c.send({ type: MsgType.UNSUBSCRIBE, msgId: 99, topicIdType: 0, topicName: 'down/#', topicId: undefined });
      await c.next(MsgType.UNSUBACK);
      c.send({ type: MsgType.SEARCHGW, radius: 0 });
      await c.next(MsgType.GWINFO);
      c.send({ type: MsgType.PINGREQ, clientId: undefined });
      await c.next(MsgType.PINGRESP);
      c.send({ type: MsgType.DISCONNECT, duration: undefined });
      await c.next(MsgType.DISCONNECT);
      await new Promise((r) => setTimeout(r, 500));
      const exited = new Promise((r) => cap.once('close', r));
      cap.kill('SIGINT');
      await exited;

      const out = spawnSync('tshark', ['-r', file, '-d', `udp.port==${h.port},mqttsn`, '-T', 'fields', '-E', 'separator=|',
        '-e', 'udp.srcport', '-e', 'mqttsn.msg.type', '-e', 'mqttsn.msg.len', '-e', '_ws.malformed', '-e', 'mqttsn.topic.id', '-e', 'mqttsn.msg.id'], { encoding: 'utf8' });
      const rows = out.stdout.trim().split('\n').map((l) => l.split('|'));
      const fromGateway = rows.filter((r) => r[0] === String(h.port));
      expect(rows.every((r) => r[3] === ''), 'no malformed packets').toBe(true);
      // The same message types, in the same order, as our own client decoded.
      expect(fromGateway.map((r) => Number(r[1]))).toEqual(c.arrivals);
      // The 260-octet payload needs the three-octet Length: 4 + 5 + 260.
      const longPublish = fromGateway.find((r) => Number(r[1]) === MsgType.PUBLISH)!;
      expect(Number(longPublish[2])).toBe(269);
      const puback = fromGateway.find((r) => Number(r[1]) === MsgType.PUBACK)!;
      expect(Number(puback[4])).toBe(topicId);
      expect(c.arrivals).toEqual(expect.arrayContaining([MsgType.WILLTOPICREQ, MsgType.WILLMSGREQ, MsgType.CONNACK, MsgType.REGACK, MsgType.PUBREC, MsgType.PUBCOMP, MsgType.SUBACK, MsgType.REGISTER]));
    } finally {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
