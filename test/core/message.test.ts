import { describe, expect, it } from 'vitest';
import { makeOrigin, originKey, ownPayload, type Message } from '../../src/core/message.js';

const msg = (payload: Buffer): Message => ({ topic: 't', payload, qos: 1, retain: true, origin: { kind: 'mqtt', id: 'c' } });

describe('ownPayload', () => {
  it('replaces a payload that is a view into a larger buffer by an exact-size copy of the same bytes', () => {
    const big = Buffer.alloc(8192, 7);
    big.write('hello', 100);
    const m = msg(big.subarray(100, 105));
    expect(ownPayload(m)).toBe(m);
    expect(m.payload.toString()).toBe('hello');
    expect(m.payload.buffer.byteLength).toBe(5);
    expect(m.payload.buffer).not.toBe(big.buffer);
  });

  it('does not copy a small payload taken from the shared allocation pool twice, and leaves the original view intact', () => {
    const pooled = Buffer.from('reading 21.5');
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.byteLength);
    const m = msg(pooled);
    ownPayload(m);
    const first = m.payload;
    expect(first.buffer.byteLength).toBe(pooled.byteLength);
    ownPayload(m);
    expect(m.payload).toBe(first);
    expect(pooled.toString()).toBe('reading 21.5');
  });

  it('keeps a payload that already owns its whole buffer, and copes with an empty one', () => {
    const own = Buffer.allocUnsafeSlow(3).fill(1);
    const m = msg(own);
    ownPayload(m);
    expect(m.payload).toBe(own);
    const empty = msg(Buffer.alloc(10).subarray(0, 0));
    ownPayload(empty);
    expect(empty.payload.length).toBe(0);
  });
});
describe('origin keys', () => {
  it('keys an MQTT client by its client id and any other source by its kind and id', () => {
    expect(originKey({ kind: 'mqtt', id: 'boiler' })).toBe('boiler');
    expect(originKey({ kind: 'serial', id: 'boiler' })).toBe('serial\u0000boiler');
    expect(originKey({ kind: 'serial', id: 'boiler' })).not.toBe(originKey({ kind: 'mqtt', id: 'boiler' }));
  });

  it('gives an origin made once the key a fresh origin of the same source gets, without building it again', () => {
    for (const kind of ['mqtt', 'mqttsn', 'serial', 'bridge', 'system'] as const) {
      const o = makeOrigin(kind, 'dev-1');
      expect(o.key).toBe(originKey({ kind, id: 'dev-1' }));
      expect(originKey(o)).toBe(o.key);
    }
  });
});
