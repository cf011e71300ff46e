/**
 * %u and %c are substituted in one pass. They were replaced one after the other, so a user
 * name holding "%c" had the client id substituted into it again: user "ev%c" connecting as
 * client "il" under `pattern readwrite devices/%u/%c/#` could write devices/evil/il/..., the
 * topics of user "evil", since the client id is whatever the client says.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Packet } from 'mqtt-packet';
import { startAuthBroker, type AuthHarness } from '../helpers/auth-harness.js';

let h: AuthHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function publishReason(clientId: string, username: string, topic: string): Promise<number> {
  const c = h!.client(5);
  expect((await c.connect({ clientId, username, password: Buffer.from('pw') })).reasonCode).toBe(0);
  c.send({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false } as Packet);
  const ack = await c.next('puback');
  c.destroy();
  return ack.reasonCode ?? 0;
}

describe('ACL %u and %c substitution', () => {
  it('does not substitute the client id into a user name that holds "%c"', async () => {
    h = await startAuthBroker({ users: { 'ev%c': 'pw', evil: 'pw' }, acl: 'pattern readwrite devices/%u/%c/#\n' });
    expect(await publishReason('il', 'ev%c', 'devices/evil/il/door')).toBe(0x87);
    expect(await publishReason('il', 'ev%c', 'devices/ev%c/il/door')).toBe(0); // allowed
    expect(await publishReason('il', 'evil', 'devices/evil/il/door')).toBe(0);
  });

  it('does not substitute the user name into a client id that holds "%u"', async () => {
    h = await startAuthBroker({ users: { bob: 'pw' }, acl: 'pattern readwrite home/%c/%u\n' });
    expect(await publishReason('a%u', 'bob', 'home/a%u/bob')).toBe(0);
    expect(await publishReason('a%u', 'bob', 'home/abob/bob')).toBe(0x87);
  });
});
