/**
 * AUTH is only for enhanced authentication, which the broker never agrees to (§4.12): any AUTH
 * after CONNECT is a Protocol Error, DISCONNECT 0x82. That includes the shortest AUTH, of
 * Remaining Length 0 (Success, no properties, §3.15.2.1), which is well-formed and so not
 * a Malformed Packet (0x81).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, type Harness } from '../helpers/broker-harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('AUTH from a client that agreed no authentication method', () => {
  it.each([
    ['of Remaining Length 0', [0xf0, 0x00]],
    ['with Continue authentication', [0xf0, 0x02, 0x18, 0x00]],
  ])('%s is a Protocol Error: DISCONNECT 0x82, then close', async (_name, bytes) => {
    h = startBroker();
    const c = h.client(5);
    expect((await c.connect({ clientId: 'a' })).reasonCode).toBe(0);
    c.sendRaw(bytes);
    const d = await c.next('disconnect');
    expect(d.reasonCode).toBe(0x82);
    await c.waitClosed();
    expect(h.broker.metrics.violations.get('protocol-error')).toBe(1);
  });
});
