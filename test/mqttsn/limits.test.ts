import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { isOutpostError } from '../../src/core/errors.js';
import { MsgType, ReturnCode } from '../../src/mqttsn/packets.js';
import { Broker } from '../../src/broker/broker.js';
import { parseConfigText } from '../../src/config/load.js';
import { createMqttsnGateway } from '../../src/mqttsn/create.js';
import { silentLog } from '../helpers/broker-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startSnGateway, until } from '../helpers/mqttsn-gateway.js';

describe('MQTT-SN session limits and offline sessions', () => {
  it('answers CONNACK 0x01 (congestion) when max_clients sessions are all connected', async () => {
    const h = await startSnGateway('max_clients: 2');
    try {
      const [a, b, c] = await Promise.all([h.client(), h.client(), h.client()]);
      expect(await a!.connect('a')).toBe(0);
      expect(await b!.connect('b')).toBe(0);
      expect(await c!.connect('c')).toBe(ReturnCode.CONGESTION);
      // A known client id still reconnects.
      expect(await a!.connect('a')).toBe(0);
    } finally {
      await h.close();
    }
  });

  it('makes room at max_clients by ending the oldest session nobody is connected to', async () => {
    const h = await startSnGateway('max_clients: 2');
    try {
      const a = await h.client();
      await a.connect('old', { clean: false });
      a.send({ type: MsgType.DISCONNECT, duration: undefined });
      await a.next(MsgType.DISCONNECT);
      const b = await h.client();
      await b.connect('b');
      const c = await h.client();
      expect(await c.connect('c')).toBe(0);
      expect(h.gw.session('old')).toBeUndefined();
    } finally {
      await h.close();
    }
  });

  it('keeps QoS 1 for a disconnected CleanSession=false client, drops QoS 0 (counted), and expires the session', async () => {
    const clock = new FakeClock();
    const h = await startSnGateway('session_expiry: 1h', { clock });
    try {
      const c = await h.client({ autoAck: true });
      await c.connect('off', { clean: false });
      await c.subscribe('o/#', 1);
      c.send({ type: MsgType.DISCONNECT, duration: undefined });
      await c.next(MsgType.DISCONNECT);
      const pub = (qos: 0 | 1, p: string) => h.broker.publish({ topic: 'o/x', payload: Buffer.from(p), qos, retain: false, origin: { kind: 'system', id: 't' } });
      pub(0, 'gone');
      pub(1, 'kept');
      expect(h.gw.metrics.dropped('offline-qos0')).toBe(1);
      expect(await c.connect('off', { clean: false })).toBe(0);
      await until(() => c.publishes.length === 1, 'the kept message');
      expect(c.publishes[0]!.payload.toString()).toBe('kept');
      c.send({ type: MsgType.DISCONNECT, duration: undefined });
      await c.next(MsgType.DISCONNECT);
      clock.advance(3_599_000);
      expect(h.gw.session('off')?.state).toBe('disconnected');
      clock.advance(1_000);
      expect(h.gw.session('off')).toBeUndefined();
    } finally {
      await h.close();
    }
  });
});

describe('MQTT-SN UDP listener', () => {
  it('fails to start with one sentence naming the address and the key to change when the port is taken', async () => {
    const blocker = dgram.createSocket('udp4');
    await new Promise<void>((r) => blocker.bind(0, '127.0.0.1', () => r()));
    const port = blocker.address().port;
    const config = parseConfigText(`mqttsn: { hosts: [127.0.0.1], port: ${port}, advertise: { interval: 0 } }`, 'x.yaml').mqttsn!;
    const gw = createMqttsnGateway(config, { bus: new Broker({}, { log: silentLog }), log: silentLog });
    try {
      const err = await gw.start().then(() => undefined, (e: unknown) => e);
      expect(isOutpostError(err, 'MQTTSN_PROTOCOL')).toBe(true);
      expect((err as Error).message).toBe(`MQTT-SN UDP 127.0.0.1:${port} is already in use; stop the other program or change mqttsn.port`);
    } finally {
      await gw.stop();
      blocker.close();
    }
  });
});
