import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/message.js';
import { MemoryRetainedStore } from '../../src/broker/retained.js';

describe('MemoryRetainedStore', () => {
  it('keeps a retained payload decoded from a larger buffer as its own bytes, so the buffer can be freed', () => {
    const wire = Buffer.alloc(64 * 1024);
    wire.write('21.5', 1000);
    const store = new MemoryRetainedStore();
    store.set({ topic: 'site/temp', payload: wire.subarray(1000, 1004), qos: 1, retain: true, origin: { kind: 'mqtt', id: 'c' } });
    const [kept] = store.match('site/temp', 0) as [Message];
    expect(kept.payload.toString()).toBe('21.5');
    expect(kept.payload.buffer.byteLength).toBe(4);
  });

  it('removes the retained message of a topic on an empty payload [MQTT-3.3.1-10]', () => {
    const store = new MemoryRetainedStore();
    const m = (payload: string): Message => ({ topic: 'a/b', payload: Buffer.from(payload), qos: 0, retain: true, origin: { kind: 'mqtt', id: 'c' } });
    store.set(m('x'));
    expect(store.size).toBe(1);
    store.set(m(''));
    expect(store.size).toBe(0);
  });
});
