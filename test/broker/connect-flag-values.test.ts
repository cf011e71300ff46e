/**
 * Request Problem Information and Request Response Information are 0 or 1: "It is a Protocol
 * Error to ... have a value other than 0 or 1" (MQTT 5 §3.1.2.11.6, §3.1.2.11.7). mqtt-packet
 * reads any byte as a boolean, so the broker checks the wire value itself; mosquitto refuses
 * such a CONNECT too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, type Harness } from '../helpers/broker-harness.js';
import { remainingLength } from '../helpers/wire.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const str = (s: string): number[] => [s.length >> 8, s.length & 0xff, ...Buffer.from(s)];

/** A v5 CONNECT (clean start, keepalive 0) with these property bytes. */
function connectWith(props: number[], clientId: string): Buffer {
  const body = [...str('MQTT'), 5, 0x02, 0, 0, props.length, ...props, ...str(clientId)];
  return Buffer.from([0x10, ...remainingLength(body.length), ...body]);
}

describe('CONNECT properties that must be 0 or 1', () => {
  it.each([
    ['Request Problem Information', 0x17],
    ['Request Response Information', 0x19],
  ])('a %s of 2 is refused with CONNACK 0x82 and the connection closed', async (_name, id) => {
    h = startBroker();
    const c = h.client(5);
    c.sendRaw(connectWith([id, 2], 'odd'));
    const ack = await c.next('connack');
    expect(ack.reasonCode).toBe(0x82);
    await c.waitClosed();
    expect(h.broker.metrics.violations.get('protocol-error')).toBe(1);
  });

  it('0 and 1 are accepted', async () => {
    h = startBroker();
    const c = h.client(5);
    c.sendRaw(connectWith([0x17, 0, 0x19, 1], 'fine'));
    const ack = await c.next('connack');
    expect(ack.reasonCode).toBe(0);
    expect(ack.properties?.responseInformation).toBeDefined();
  });
});
