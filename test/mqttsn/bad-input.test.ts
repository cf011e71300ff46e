import dgram from 'node:dgram';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import type { Bus } from '../../src/core/bus.js';
import { parseConfigText } from '../../src/config/load.js';
import { createMqttsnGateway } from '../../src/mqttsn/create.js';
import { decode } from '../../src/mqttsn/decode.js';
import { encapsulate, encode } from '../../src/mqttsn/encode.js';
import { MsgType } from '../../src/mqttsn/packets.js';
import { silentLog } from '../helpers/broker-harness.js';
import { SnTestClient } from '../helpers/mqttsn-client.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
let h: SnHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function captureLog() {
  const lines: { msg: string; reason?: string; suppressed?: number }[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, dest), lines };
}

describe('MQTT-SN bad input', () => {
  it.each([
    ['truncated', '05 0c 00', 'truncated'],
    ['wrong length', '03 16', 'truncated'],
    ['trailing octets', '02 17 00 00', 'bad-length'],
    ['unknown type', '02 03', 'unknown-type'],
    ['MQTT-SN 2.0 SEARCHGW body', '05 01 01 00 00', 'bad-length'],
    ['reserved TopicIdType', '07 0c 03 0001 0001', 'malformed'],
  ])('drops a %s datagram and counts it', async (_name, wire, reason) => {
    h = await startSnGateway();
    const c = await h.client();
    c.sendRaw(hex(wire));
    await until(() => h!.gw.metrics.dropped(reason as never) === 1, `a ${reason} drop`);
    expect(await c.none(MsgType.DISCONNECT, 50)).toBe(true);
  });

  it('drops a datagram over max_datagram_size before decoding it', async () => {
    h = await startSnGateway('max_datagram_size: 64');
    const c = await h.client();
    await c.connect('big');
    const { topicId } = await c.register('t');
    c.publish(topicId, Buffer.alloc(100), { qos: 1 });
    await until(() => h!.gw.metrics.dropped('oversized') === 1, 'the oversized drop');
    c.publish(topicId, Buffer.alloc(10), { qos: 1 });
    expect((await c.next(MsgType.PUBACK)).returnCode).toBe(0);
  });

  it('accepts a 256-octet datagram in the three-octet Length form', async () => {
    h = await startSnGateway();
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('long');
    const { topicId } = await c.register('long');
    c.publish(topicId, Buffer.alloc(300, 0x61), { qos: 1 });
    await c.next(MsgType.PUBACK);
    expect(seen[0]!.payload.length).toBe(300);
  });

  it('drops a flood from one source over the rate limit while another sensor is served', async () => {
    h = await startSnGateway('rate_limit: { datagrams_per_second: 100, burst: 50 }');
    const flooder = await h.client();
    const good = await h.client();
    await good.connect('good');
    const { topicId } = await good.register('good/t');
    for (let i = 0; i < 2000; i++) flooder.sendRaw(hex('02 16'));
    await until(() => h!.gw.metrics.dropped('flood') > 1500, 'flood drops', 5000);
    good.publish(topicId, 'still here', { qos: 1 });
    expect((await good.next(MsgType.PUBACK)).returnCode).toBe(0);
  });

  it('drops a flood from one node behind a forwarder while the other nodes behind the same forwarder are served', async () => {
    h = await startSnGateway('rate_limit: { datagrams_per_second: 1, burst: 50 }');
    // One forwarder socket relaying two nodes (§5.5).
    const forwarder = dgram.createSocket('udp4');
    await new Promise<void>((r) => forwarder.bind(0, '127.0.0.1', () => r()));
    const answers: { node: string; type: number }[] = [];
    forwarder.on('message', (buf) => {
      const d = decode(buf);
      if (d.ok) answers.push({ node: d.encapsulation?.wirelessNodeId.toString('hex') ?? '', type: d.packet.type });
    });
    const via = (node: number, message: Buffer) => forwarder.send(encapsulate(message, { ctrl: 0, wirelessNodeId: Buffer.from([node]) }), h!.port, '127.0.0.1');
    try {
      for (let i = 0; i < 200; i++) via(1, hex('02 16'));
      // In the middle of the flood, the other node connects.
      via(2, encode({ type: MsgType.CONNECT, will: false, cleanSession: true, protocolId: 1, duration: 60, clientId: 'quiet-node' }));
      for (let i = 0; i < 200; i++) via(1, hex('02 16'));
      await until(() => h!.gw.metrics.dropped('flood') >= 300, 'flood drops', 5000);
      await until(() => answers.some((a) => a.node === '02' && a.type === MsgType.CONNACK), 'the CONNACK of the other node');
    } finally {
      forwarder.close();
    }
  });

  it('logs garbage rate-limited: a burst of lines, then a count of the suppressed ones', async () => {
    const { log, lines } = captureLog();
    h = await startSnGateway('', { log });
    const c = await h.client();
    for (let i = 0; i < 300; i++) c.sendRaw(hex('02 03'));
    await until(() => h!.gw.metrics.dropped('unknown-type') === 300, 'all drops counted');
    const garbage = lines.filter((l) => l.reason === 'unknown-type');
    expect(garbage.length).toBeLessThanOrEqual(5);
    expect(garbage.length).toBeGreaterThan(0);
  });

  it('never answers gateway-only message types and never crashes on them', async () => {
    h = await startSnGateway();
    const c = await h.client();
    await c.connect('odd');
    for (const t of ['03 05 00', '02 06', '02 08', '08 13 00 0000 0001 00', '04 15 0001', '02 17', '03 1b 00', '03 1d 00']) c.sendRaw(hex(t));
    await until(() => h!.gw.metrics.dropped('unexpected') === 8, 'eight unexpected drops');
    c.send({ type: MsgType.PINGREQ, clientId: undefined });
    await c.next(MsgType.PINGRESP);
  });
});

describe('MQTT-SN handler failures', () => {
  it('contains an exception thrown while handling one message: counted, logged, the gateway carries on', async () => {
    const broker = new Broker({}, { log: silentLog });
    const bus: Bus = {
      publish: (m) => {
        if (m.topic === 'boom') throw new Error('a bug');
        return broker.publish(m);
      },
      subscribe: (...a) => broker.subscribe(...a),
      addDurableSink: (sink) => broker.addDurableSink(sink),
    };
    const { log, lines } = captureLog();
    const config = parseConfigText('mqttsn: { hosts: [127.0.0.1], port: 0, advertise: { interval: 0 } }', 'x.yaml').mqttsn!;
    const gw = createMqttsnGateway(config, { bus, log });
    await gw.start();
    const c = await SnTestClient.open({ port: gw.addresses[0]!.port });
    try {
      await c.connect('buggy');
      const boom = await c.register('boom');
      const fine = await c.register('fine');
      c.publish(boom.topicId, 'x', { qos: 1 });
      await until(() => gw.metrics.dropped('internal-error') === 1, 'the contained failure');
      expect(lines.some((l) => l.msg === 'mqtt-sn message handling failed')).toBe(true);
      c.publish(fine.topicId, 'y', { qos: 1 });
      expect((await c.next(MsgType.PUBACK)).returnCode).toBe(0);
    } finally {
      await c.close();
      await gw.stop();
      await broker.close();
    }
  });
});
