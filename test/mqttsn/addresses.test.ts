import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MsgType } from '../../src/mqttsn/packets.js';
import { UdpTransport } from '../../src/mqttsn/udp-transport.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness;
beforeEach(async () => {
  h = await startSnGateway('predefined_topics: { 1: p/one }', { ipv6: true });
});
afterEach(async () => h.close());

describe('MQTT-SN sessions, addresses and NAT', () => {
  it('lets a CONNECT with a known client id from a new address take the session over', async () => {
    const a = await h.client({ autoAck: true });
    await a.connect('nat', { clean: false });
    await a.subscribe('to/nat', 0);
    const b = await h.client({ autoAck: true });
    await b.connect('nat', { clean: false });
    h.broker.publish({ topic: 'to/nat', payload: Buffer.from('x'), qos: 0, retain: false, origin: { kind: 'system', id: 't' } });
    await until(() => b.publishes.length === 1, 'delivery to the new address');
    expect(a.publishes).toHaveLength(0);
    // The old address no longer has a session: it is told to reconnect.
    a.send({ type: MsgType.PINGREQ, clientId: undefined });
    await a.next(MsgType.DISCONNECT);
  });

  it('answers a non-CONNECT message from an unknown address with DISCONNECT and counts it', async () => {
    const c = await h.client();
    c.send({ type: MsgType.REGISTER, topicId: 0, msgId: 1, topicName: 'x' });
    await c.next(MsgType.DISCONNECT);
    c.publish(1, 'x', { qos: 1 });
    await c.next(MsgType.DISCONNECT);
    expect(h.gw.metrics.dropped('unknown-peer')).toBe(2);
  });

  it('loses the previous client when another client id connects from its address, publishing its Will', async () => {
    const wills = h.watch('wills/#');
    const c = await h.client();
    await c.connect('first', { will: { topic: 'wills/first', payload: 'x' } });
    await c.connect('second');
    expect(h.gw.session('first')).toBeUndefined();
    expect(h.gw.session('second')?.state).toBe('active');
    expect(wills).toHaveLength(1);
  });

  it('serves clients over IPv6 as over IPv4', async () => {
    const seen = h.watch('#');
    const port6 = h.gw.addresses.find((a) => a.family === 'IPv6')!.port;
    expect(port6).toBe(h.port);
    const c = await h.client({ host: '::1' });
    expect(await c.connect('v6')).toBe(0);
    const { topicId } = await c.register('six/topic');
    c.publish(topicId, 'hi', { qos: 1 });
    await c.next(MsgType.PUBACK);
    expect(seen.map((m) => m.topic)).toEqual(['six/topic']);
  });

  it('keeps one session per client id through many reconnects from changing ports', async () => {
    for (let i = 0; i < 20; i++) {
      const c = await h.client();
      expect(await c.connect('hopper', { clean: false })).toBe(0);
    }
    expect(h.gw.sessionCount).toBe(1);
    expect(h.gw.byPeer.size).toBe(1);
  });
});

describe('MQTT-SN discovery (§6.1) and forwarders (§5.5)', () => {
  it('answers SEARCHGW with GWINFO carrying the gateway id', async () => {
    const c = await h.client();
    c.send({ type: MsgType.SEARCHGW, radius: 0 });
    expect(await c.next(MsgType.GWINFO)).toMatchObject({ gwId: 1, gwAdd: Buffer.alloc(0) });
  });

  it('answers an encapsulated message encapsulated, for the same Wireless Node Id, with the radius in Ctrl', async () => {
    const c = await h.client({ nodeId: Buffer.from('0a0b0c', 'hex') });
    c.send({ type: MsgType.SEARCHGW, radius: 2 });
    await c.next(MsgType.GWINFO);
    expect(c.lastCtrl).toBe(2);
    expect(await c.connect('behind-forwarder')).toBe(0);
    expect(c.lastCtrl).toBe(0);
    const reg = await c.register('fw/topic');
    expect(reg.returnCode).toBe(0);
  });

  it('answers a forwarder that sets Radius bits in its own Ctrl with Radius 0, before and after CONNECT', async () => {
    // Radius is only relevant gateway → forwarder (§5.5): echoing it would ask the forwarder
    // to broadcast a reply meant for one node.
    const c = await h.client({ nodeId: Buffer.from([0x42]), ctrl: 0x03 });
    c.send({ type: MsgType.PINGREQ, clientId: 'nobody' });
    await c.next(MsgType.DISCONNECT);
    expect(c.lastCtrl).toBe(0);
    c.send({ type: MsgType.CONNECT, will: false, cleanSession: true, protocolId: 2, duration: 60, clientId: 'v2' });
    expect((await c.next(MsgType.CONNACK)).returnCode).toBe(0x03);
    expect(c.lastCtrl).toBe(0);
    expect(await c.connect('ctrl-3')).toBe(0);
    expect(c.lastCtrl).toBe(0);
    c.send({ type: MsgType.SEARCHGW, radius: 1 });
    await c.next(MsgType.GWINFO);
    expect(c.lastCtrl).toBe(1);
  });

  it('answers an encapsulated SEARCHGW of radius 4 or more with the widest radius Ctrl holds, 3', async () => {
    const ctrls: Array<number | undefined> = [];
    for (const radius of [3, 4, 5, 255]) {
      const c = await h.client({ nodeId: Buffer.from([0x43]) }); // a forwarder each: no pacing between them
      c.send({ type: MsgType.SEARCHGW, radius });
      await c.next(MsgType.GWINFO);
      ctrls.push(c.lastCtrl);
    }
    expect(ctrls).toEqual([3, 3, 3, 3]);
  });

  it('counts the forwarder header against max_datagram_size: a message that fits only without it is dropped as too large', async () => {
    const g = await startSnGateway('max_datagram_size: 128');
    try {
      // Encapsulation adds 3 octets and the Wireless Node Id (§5.5): 11 here.
      const c = await g.client({ nodeId: Buffer.from('0102030405060708', 'hex'), autoAck: true });
      expect(await c.connect('far-node')).toBe(0);
      await c.subscribe('f/#', 1);
      void g.local('f/big', 'x'.repeat(118), 1); // a PUBLISH of 125 octets, 136 encapsulated
      void g.local('f/small', 'next', 1);
      await until(() => c.publishes.some((p) => p.payload.toString() === 'next'), 'the next message');
      expect(c.publishes.map((p) => p.payload.toString())).toEqual(['next']);
      expect(g.gw.metrics.dropped('too-large-out')).toBe(1);
    } finally {
      await g.close();
    }
  });

  it('keeps two nodes behind one forwarder apart', async () => {
    const n1 = await h.client({ nodeId: Buffer.from([1]) });
    const n2 = await h.client({ nodeId: Buffer.from([2]) });
    await n1.connect('node-1');
    await n2.connect('node-2');
    expect(h.gw.session('node-1')?.state).toBe('active');
    expect(h.gw.session('node-2')?.state).toBe('active');
  });
});

describe('MQTT-SN ADVERTISE (§6.1)', () => {
  it('broadcasts ADVERTISE with the gateway id and the interval as Duration, and GWINFO within the radius', async () => {
    const listener = await h.client();
    const g = await startSnGateway(`gateway_id: 9\nadvertise: { interval: 1s, address: 127.0.0.1, port: ${listener.localPort} }`);
    try {
      expect(await listener.next(MsgType.ADVERTISE)).toEqual({ type: MsgType.ADVERTISE, gwId: 9, duration: 1 });
      expect(await listener.next(MsgType.ADVERTISE, 2500)).toMatchObject({ gwId: 9 });
      const searcher = await g.client();
      searcher.send({ type: MsgType.SEARCHGW, radius: 1 });
      await searcher.next(MsgType.GWINFO);
      expect(await listener.next(MsgType.GWINFO)).toMatchObject({ gwId: 9 });
      // Radius 0: the answer goes to the searcher only, nothing is broadcast.
      searcher.send({ type: MsgType.SEARCHGW, radius: 0 });
      await searcher.next(MsgType.GWINFO);
      expect(await listener.none(MsgType.GWINFO, 200)).toBe(true);
    } finally {
      await g.close();
    }
  });

  it('announces an interval that is not whole seconds rounded up in the ADVERTISE Duration, never sooner than the next one comes', async () => {
    const listener = await h.client();
    for (const [interval, duration] of [['400ms', 1], ['1400ms', 2]] as const) {
      const g = await startSnGateway(`advertise: { interval: ${interval}, address: 127.0.0.1, port: ${listener.localPort} }`);
      try {
        // (A wrong Duration never matches: the wait fails.)
        await listener.next(MsgType.ADVERTISE, 2000, (p) => p.duration === duration);
      } finally {
        await g.close();
      }
    }
  });

  it('broadcasts GWINFO at most once a second for repeated SEARCHGWs, answering every searcher; a wider radius goes out at once', async () => {
    const clock = new FakeClock();
    const listener = await h.client();
    const g = await startSnGateway(`advertise: { interval: 0, address: 127.0.0.1, port: ${listener.localPort} }`, { clock });
    try {
      const searcher = await g.client();
      for (let i = 0; i < 5; i++) {
        searcher.send({ type: MsgType.SEARCHGW, radius: 1 });
        await searcher.next(MsgType.GWINFO);
      }
      searcher.send({ type: MsgType.SEARCHGW, radius: 2 });
      await searcher.next(MsgType.GWINFO);
      clock.advance(1_000);
      searcher.send({ type: MsgType.SEARCHGW, radius: 1 });
      await searcher.next(MsgType.GWINFO);
      await new Promise((r) => setTimeout(r, 100));
      expect(listener.arrivals.filter((t) => t === MsgType.GWINFO)).toHaveLength(3);

      // Behind a forwarder: the Radius in Ctrl is paced the same way, per forwarder.
      const node = await g.client({ nodeId: Buffer.from([7]) });
      const ctrls: Array<number | undefined> = [];
      for (let i = 0; i < 3; i++) {
        node.send({ type: MsgType.SEARCHGW, radius: 2 });
        await node.next(MsgType.GWINFO);
        ctrls.push(node.lastCtrl);
      }
      clock.advance(1_000);
      node.send({ type: MsgType.SEARCHGW, radius: 2 });
      await node.next(MsgType.GWINFO);
      ctrls.push(node.lastCtrl);
      expect(ctrls).toEqual([2, 0, 0, 2]);
    } finally {
      await g.close();
    }
  });

  it('counts a datagram no socket can send (an IPv4 ADVERTISE from IPv6-only hosts) as a send error, which the metrics show', async () => {
    const g = await startSnGateway('advertise: { interval: 1h }', { hosts: ['::1'] });
    try {
      // start() sent the first ADVERTISE to 255.255.255.255, which no bound socket can reach.
      expect(g.gw.sendErrors).toBe(1);
      const c = await g.client({ host: '::1' });
      await c.connect('v6');
      expect(g.gw.sendErrors).toBe(1); // the CONNACK went out
    } finally {
      await g.close();
    }
  });

  it('warns at start when no bound address can send to advertise.address (IPv6-only hosts, IPv4 broadcast)', async () => {
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: 'info' }, new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    }));
    const warnings = async (hosts: string[]) => {
      lines.length = 0;
      const t = new UdpTransport({ hosts, port: 0, maxDatagramSize: 4096, broadcastAddress: '255.255.255.255', broadcastPort: 1885 }, log);
      await t.start(() => undefined);
      await t.stop();
      return lines.filter((l) => l.level === 40).map((l) => l.msg);
    };
    expect(await warnings(['::1'])).toEqual([expect.stringMatching(/ADVERTISE .*no IPv4 address for mqttsn\.advertise\.address/)]);
    expect(await warnings(['127.0.0.1', '::1'])).toEqual([]);
  });
});
