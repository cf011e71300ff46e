/**
 * A reload after `outpost passwd -D FILE alice` (or a new password for alice) must lock alice
 * out: her connected clients were kept, with every right the ACL gives "user alice", until
 * they chose to leave. mosquitto re-checks connected clients on reload and disconnects them
 * too. Clients of users left alone, anonymous clients and certificate identities stay.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Packet } from 'mqtt-packet';
import type { PasswordVerifier } from '../../src/auth/access-control.js';
import { accessControl, startAuthBroker, type AuthHarness } from '../helpers/auth-harness.js';

let h: AuthHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const ACL = 'user alice\nreadwrite home/#\nuser bob\nreadwrite home/#\nanonymous\nread home/#\n';

async function login(version: 4 | 5, clientId: string, username: string, password: string) {
  const c = h!.client(version);
  expect((await c.connect({ clientId, username, password: Buffer.from(password) })).returnCode ?? 0).toBe(0);
  return c;
}

describe('a reload of the password file', () => {
  it('disconnects the clients of a user deleted from it (v5 with DISCONNECT 0x87) and keeps the others', async () => {
    h = await startAuthBroker({ users: { alice: 'apw', bob: 'bpw' }, acl: ACL });
    const alice5 = await login(5, 'alice-5', 'alice', 'apw');
    const alice4 = await login(4, 'alice-4', 'alice', 'apw');
    const bob = await login(5, 'bob-5', 'bob', 'bpw');
    const anon = h.client(4);
    await anon.connect({ clientId: 'anon' });
    h.broker.setAccessControl(await accessControl({ users: { bob: 'bpw' }, acl: ACL }));
    const disconnect = await alice5.next('disconnect');
    expect(disconnect.reasonCode).toBe(0x87);
    await alice5.waitClosed();
    await alice4.waitClosed();
    expect(bob.closed).toBe(false);
    expect(anon.closed).toBe(false);
    bob.send({ cmd: 'pingreq' } as Packet);
    await bob.next('pingresp');
  });

  it('disconnects the clients of a user given a new password, and admits the new one', async () => {
    h = await startAuthBroker({ users: { alice: 'old', bob: 'bpw' }, acl: ACL });
    const alice = await login(4, 'alice-4', 'alice', 'old');
    const bob = await login(4, 'bob-4', 'bob', 'bpw');
    h.broker.setAccessControl(await accessControl({ users: { alice: 'new', bob: 'bpw' }, acl: ACL }));
    await alice.waitClosed();
    expect(bob.closed).toBe(false);
    await login(4, 'alice-again', 'alice', 'new');
  });

  it('publishes the Will of a client it disconnects, as for any close without DISCONNECT', async () => {
    h = await startAuthBroker({ users: { alice: 'apw', bob: 'bpw' }, acl: ACL });
    const bob = await login(4, 'bob-4', 'bob', 'bpw');
    bob.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'home/#', qos: 0 }] } as Packet);
    await bob.next('suback');
    const alice = h.client(4);
    await alice.connect({ clientId: 'alice-4', username: 'alice', password: Buffer.from('apw'), will: { topic: 'home/alice', payload: Buffer.from('gone'), qos: 0, retain: false } });
    h.broker.setAccessControl(await accessControl({ users: { bob: 'bpw' }, acl: ACL }));
    await alice.waitClosed();
    expect((await bob.next('publish')).topic).toBe('home/alice');
  });

  it('keeps everyone connected when it is read again unchanged', async () => {
    h = await startAuthBroker({ users: { alice: 'apw' }, acl: ACL });
    const alice = await login(5, 'alice-5', 'alice', 'apw');
    h.broker.setAccessControl(await accessControl({ users: { alice: 'apw' }, acl: ACL }));
    alice.send({ cmd: 'pingreq' } as Packet);
    await alice.next('pingresp');
    expect(alice.closed).toBe(false);
  });

  it('refuses a CONNECT whose password check was running when the reload deleted its user', async () => {
    // A verifier that answers "right password" only when the test says so: the reload lands in between.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const slow: PasswordVerifier = {
      credential: (user) => (user === 'alice' ? 'alice-entry' : undefined),
      verify: async () => {
        started();
        await gate;
        return true;
      },
    };
    h = await startAuthBroker({ passwords: slow, acl: ACL, failureDelayMs: 10 });
    const alice = h.client(5);
    const ack = alice.connect({ clientId: 'alice-5', username: 'alice', password: Buffer.from('apw') });
    await running;
    h.broker.setAccessControl(await accessControl({ users: { bob: 'bpw' }, acl: ACL, failureDelayMs: 10 }));
    release();
    expect((await ack).reasonCode).toBe(0x86);
  });
});
