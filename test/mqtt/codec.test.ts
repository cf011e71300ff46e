import { describe, expect, it } from 'vitest';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { Decoder, decodeAck, decodePublish, encodeAck, encodePublish, readFrameLength, type DecodeError } from '../../src/mqtt/codec.js';

/** Seeded PRNG so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function reference(buf: Buffer, version: 4 | 5): Packet {
  const parser = mqttPacket.parser({ protocolVersion: version });
  let out: Packet | undefined;
  parser.on('packet', (p: Packet) => (out = p));
  parser.on('error', (e: Error) => {
    throw e;
  });
  parser.parse(buf);
  if (out === undefined) throw new Error('reference parser produced nothing');
  return out;
}

describe('PUBLISH fast path', () => {
  it('encodes v5 publishes with forwarded properties byte-for-byte as mqtt-packet does, in their order', () => {
    const next = rng(7);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
    const strings = ['', 'a', 'outpost-seq', 'ünï°C', 'x'.repeat(200)];
    for (let i = 0; i < 500; i++) {
      const props: Record<string, unknown> = {};
      const keys = ['userProperties', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData', 'payloadFormatIndicator', 'topicAlias', 'subscriptionIdentifier'];
      for (const k of keys.sort(() => next() - 0.5)) {
        if (next() < 0.4) continue;
        if (k === 'userProperties') {
          const u: Record<string, string | string[]> = {};
          for (let j = 1 + Math.floor(next() * 3); j > 0; j--) u[pick(strings) + j] = next() < 0.3 ? [pick(strings), pick(strings)] : pick(strings);
          props[k] = u;
        } else if (k === 'messageExpiryInterval') props[k] = pick([0, 1, 300, 0xffffffff]);
        else if (k === 'correlationData') props[k] = Buffer.from(pick(strings));
        else if (k === 'topicAlias') props[k] = pick([1, 300, 65_535]);
        else if (k === 'subscriptionIdentifier') props[k] = pick<number | number[]>([1, 127, 128, 268_435_455, [1, 70_000]]);
        else if (k === 'payloadFormatIndicator') props[k] = next() < 0.5;
        else props[k] = pick(strings);
      }
      const qos = pick([0, 1, 2] as const);
      const topic = pick(['a/b', 'sensors/ünï', 'x'.repeat(300)]);
      const payload = Buffer.alloc(pick([0, 5, 100, 20_000]), 0x42);
      const ours = encodePublish(topic, payload, qos, i % 2 === 0, qos > 0 && i % 3 === 0, 0x0102, 5, props);
      const theirs = mqttPacket.generate(
        { cmd: 'publish', topic, payload, qos, retain: i % 2 === 0, dup: qos > 0 && i % 3 === 0, messageId: qos > 0 ? 0x0102 : undefined, properties: props },
        { protocolVersion: 5 },
      );
      expect(ours.toString('hex'), JSON.stringify(props)).toBe(theirs.toString('hex'));
    }
  });

  it('encodes Topic Alias and several Subscription Identifiers as mqtt-packet does', () => {
    const props = { topicAlias: 3, subscriptionIdentifier: [1, 70_000], userProperties: { a: 'b' } };
    const ours = encodePublish('t', Buffer.from('x'), 1, false, false, 9, 5, props);
    const theirs = mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, messageId: 9, properties: props }, { protocolVersion: 5 });
    expect(ours.equals(theirs)).toBe(true);
  });

  it('ignores properties in a 3.1.1 publish, which has no property block', () => {
    const ours = encodePublish('t', Buffer.from('x'), 1, false, false, 9, 4, { userProperties: { a: 'b' } });
    expect(ours.equals(encodePublish('t', Buffer.from('x'), 1, false, false, 9, 4))).toBe(true);
  });

  const sizes = [0, 1, 63, 64, 100, 127 - 9, 16_384, 70_000];
  const topics = ['a', 'sensors/boiler/temp', 'ünï/çødé/°C', 'x'.repeat(300)];

  for (const version of [4, 5] as const) {
    for (const qos of [0, 1, 2] as const) {
      it(`encodes byte-for-byte what mqtt-packet encodes (v${version}, QoS ${qos}, every length form)`, () => {
        for (const size of sizes) {
          for (const topic of topics) {
            const payload = Buffer.alloc(size, 0x41 + (size % 26));
            for (const retain of [false, true]) {
              const dup = qos > 0 && retain;
              const ours = encodePublish(topic, payload, qos, retain, dup, 0x1234, version);
              const theirs = mqttPacket.generate(
                { cmd: 'publish', topic, payload, qos, retain, dup, messageId: qos > 0 ? 0x1234 : undefined },
                { protocolVersion: version },
              );
              expect(ours.equals(theirs)).toBe(true);
            }
          }
        }
      });

      it(`decodes what mqtt-packet decodes (v${version}, QoS ${qos})`, () => {
        for (const size of sizes) {
          for (const topic of topics) {
            const payload = Buffer.alloc(size, 7);
            const bytes = mqttPacket.generate(
              { cmd: 'publish', topic, payload, qos, retain: true, dup: qos > 0, messageId: qos > 0 ? 65535 : undefined },
              { protocolVersion: version },
            );
            const ours = decodePublish(bytes, version)!;
            const theirs = reference(bytes, version) as Extract<Packet, { cmd: 'publish' }>;
            expect(ours.topic).toBe(theirs.topic);
            expect(ours.qos).toBe(theirs.qos);
            expect(ours.retain).toBe(theirs.retain);
            expect(ours.dup).toBe(theirs.dup);
            expect(ours.messageId).toBe(theirs.messageId);
            expect(Buffer.compare(ours.payload as Buffer, theirs.payload as Buffer)).toBe(0);
          }
        }
      });
    }
  }

  it('leaves v5 PUBLISH with properties to the reference parser', () => {
    const bytes = mqttPacket.generate(
      { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { contentType: 'text/plain' } },
      { protocolVersion: 5 },
    );
    expect(decodePublish(bytes, 5)).toBeUndefined();
  });

  it('returns undefined instead of throwing for truncated or QoS 3 packets', () => {
    expect(decodePublish(Buffer.from([0x36, 0x02, 0x00, 0x01]), 4)).toBeUndefined(); // QoS 3
    expect(decodePublish(Buffer.from([0x30, 0x02, 0x00, 0x05]), 4)).toBeUndefined(); // topic past end
    expect(decodePublish(Buffer.from([0x32, 0x03, 0x00, 0x01, 0x61]), 4)).toBeUndefined(); // no packet id
  });

  it('copies the payload so the read buffer is not pinned', () => {
    const bytes = mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('abc'), qos: 0, retain: false, dup: false });
    const p = decodePublish(bytes, 4)!;
    bytes.fill(0);
    expect(String(p.payload)).toBe('abc');
  });
});

describe('Decoder framing', () => {
  function collect(max = 1 << 20) {
    const packets: Packet[] = [];
    const errors: DecodeError[] = [];
    const d = new Decoder(max, { onPacket: (p) => packets.push(p), onError: (e) => errors.push(e) });
    return { d, packets, errors };
  }

  it('reassembles packets split at every byte boundary', () => {
    const stream = Buffer.concat([
      mqttPacket.generate({ cmd: 'connect', clientId: 'c', protocolVersion: 4, clean: true, keepalive: 0 }),
      mqttPacket.generate({ cmd: 'publish', topic: 'a/b', payload: Buffer.alloc(300, 1), qos: 1, messageId: 9, retain: false, dup: false }),
      mqttPacket.generate({ cmd: 'pingreq' }),
    ]);
    for (let cut = 1; cut < stream.length; cut++) {
      const { d, packets, errors } = collect();
      d.push(stream.subarray(0, cut));
      d.push(stream.subarray(cut));
      expect(errors).toEqual([]);
      expect(packets.map((p) => p.cmd)).toEqual(['connect', 'publish', 'pingreq']);
    }
  });

  it('reassembles a large packet fed one small chunk at a time', () => {
    const bytes = mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(200_000, 3), qos: 0, retain: false, dup: false });
    const { d, packets } = collect();
    for (let i = 0; i < bytes.length; i += 1000) d.push(bytes.subarray(i, i + 1000));
    expect(packets).toHaveLength(1);
    expect((packets[0] as Extract<Packet, { cmd: 'publish' }>).payload.length).toBe(200_000);
  });

  it('refuses a packet over the maximum size from its header alone', () => {
    const { d, errors } = collect(1000);
    d.push(Buffer.from([0x30, 0xff, 0xff, 0x03])); // announces 65535 bytes, sends 4
    expect(errors).toEqual([{ kind: 'too-large', detail: expect.stringContaining('exceeds 1000'), size: 65_539 }]);
  });

  it('reports a Remaining Length longer than four bytes as malformed', () => {
    expect(readFrameLength(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 0)).toBe(-1);
    const { d, errors } = collect();
    d.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    expect(errors[0]?.kind).toBe('malformed');
  });

  it('keeps decoding other streams after one stream sent garbage', () => {
    const bad = collect();
    bad.d.push(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x06, 0x02, 0x00, 0x00, 0x00, 0x00]));
    expect(bad.errors).toHaveLength(1);
    const good = collect();
    good.d.push(mqttPacket.generate({ cmd: 'connect', clientId: 'ok', protocolVersion: 4, clean: true, keepalive: 0 }));
    expect(good.errors).toEqual([]);
    expect(good.packets.map((p) => p.cmd)).toEqual(['connect']);
  });

  it('never throws on random bytes', () => {
    const r = rng(42);
    for (let i = 0; i < 5000; i++) {
      const { d } = collect(4096);
      const len = Math.floor(r() * 64);
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(r() * 256);
      expect(() => d.push(b)).not.toThrow();
    }
  });
});

describe('ack fast path', () => {
  for (const version of [4, 5] as const) {
    for (const cmd of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const) {
      it(`encodes and decodes a plain ${cmd} exactly as mqtt-packet does (v${version})`, () => {
        // v5 may omit reason code and properties when the reason is Success (§3.4.2.1).
        const ours = encodeAck(cmd, 0xbeef);
        const parsed = reference(ours, version);
        expect(parsed.cmd).toBe(cmd);
        expect(parsed.messageId).toBe(0xbeef);
        expect((parsed as { reasonCode?: number }).reasonCode ?? 0).toBe(0);
        const plain = mqttPacket.generate({ cmd, messageId: 0xbeef } as Packet, { protocolVersion: 4 });
        expect(ours.equals(plain)).toBe(true);
        const decoded = decodeAck(plain)!;
        expect(decoded.cmd).toBe(cmd);
        expect(decoded.messageId).toBe(0xbeef);
      });
    }
  }

  it('leaves acks with a reason code, or wrong header flags, to the reference parser', () => {
    const withReason = mqttPacket.generate({ cmd: 'puback', messageId: 1, reasonCode: 0x87 } as Packet, { protocolVersion: 5 });
    expect(decodeAck(withReason)).toBeUndefined();
    expect(decodeAck(Buffer.from([0x60, 0x02, 0x00, 0x01]))).toBeUndefined(); // PUBREL must have flags 0b0010
    expect(decodeAck(Buffer.from([0x42, 0x02, 0x00, 0x01]))).toBeUndefined(); // PUBACK must have flags 0
  });
});
