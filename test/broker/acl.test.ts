import { afterEach, describe, expect, it } from 'vitest';
import type { Packet } from 'mqtt-packet';
import { accessControl, startAuthBroker, type AuthHarness } from '../helpers/auth-harness.js';
import type { RawClient } from '../helpers/raw-client.js';

const ACL = [
  'user alice',
  'readwrite home/#',
  'read sensors/a/#',
  'write out/%u',
  'client watcher',
  'read #',
].join('\n');

let h: AuthHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function alice(version: 4 | 5 = 4, clientId = 'alice-1'): Promise<RawClient> {
  const c = h!.client(version);
  const ack = await c.connect({ clientId, username: 'alice', password: Buffer.from('pw') });
  expect(version === 5 ? ack.reasonCode : ack.returnCode).toBe(0);
  return c;
}

function collect(topic: string): string[] {
  const seen: string[] = [];
  h!.broker.subscribe(topic, { kind: 'system', id: 'observer' }, { qos: 2 }, (m) => void seen.push(m.topic));
  return seen;
}

describe('ACL on SUBSCRIBE', () => {
  it('answers a denied filter with 0x80 in 3.1.1 and 0x87 in v5, and grants the others', async () => {
    h = await startAuthBroker({ users: { alice: 'pw' }, acl: ACL });
    for (const [version, denied] of [[4, 0x80], [5, 0x87]] as const) {
      const c = await alice(version, `a${version}`);
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'home/#', qos: 1 }, { topic: 'secret/#', qos: 1 }] } as Packet);
      expect((await c.next('suback')).granted).toEqual([1, denied]);
    }
    expect(h.broker.metrics.denials.get('subscribe')).toBe(2);
  });

  it('grants a wildcard that reaches unreadable topics and delivers only the readable ones, retained ones too', async () => {
    h = await startAuthBroker({ users: { alice: 'pw' }, acl: ACL });
    h.broker.publish({ topic: 'sensors/a/1', payload: Buffer.from('r-ok'), qos: 0, retain: true, origin: { kind: 'system', id: 't' } });
    h.broker.publish({ topic: 'sensors/b/1', payload: Buffer.from('r-no'), qos: 0, retain: true, origin: { kind: 'system', id: 't' } });
    const c = await alice();
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'sensors/#', qos: 0 }] } as Packet);
    expect((await c.next('suback')).granted).toEqual([0]);
    h.broker.publish({ topic: 'sensors/b/2', payload: Buffer.from('no'), qos: 0, retain: false, origin: { kind: 'system', id: 't' } });
    h.broker.publish({ topic: 'sensors/a/2', payload: Buffer.from('ok'), qos: 0, retain: false, origin: { kind: 'system', id: 't' } });
    const got = (await c.settle(50)).filter((p) => p.cmd === 'publish').map((p) => (p as { payload: Buffer }).payload.toString());
    expect(got).toEqual(['r-ok', 'ok']);
    expect(h.broker.metrics.denials.get('delivery')).toBe(1);
  });
});

describe('ACL on PUBLISH', () => {
  it('3.1.1: acknowledges denied QoS 1 and QoS 2 publishes as the protocol requires and routes none of them', async () => {
    h = await startAuthBroker({ users: { alice: 'pw' }, acl: ACL });
    const seen = collect('#');
    const c = await alice(4);
    c.send({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('0'), qos: 0, retain: true, dup: false } as Packet);
    c.send({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('1'), qos: 1, messageId: 1, retain: false, dup: false } as Packet);
    expect((await c.next('puback')).messageId).toBe(1);
    c.send({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('2'), qos: 2, messageId: 2, retain: false, dup: false } as Packet);
    expect((await c.next('pubrec')).messageId).toBe(2);
    c.send({ cmd: 'pubrel', messageId: 2 } as Packet);
    expect((await c.next('pubcomp')).messageId).toBe(2);
    c.send({ cmd: 'publish', topic: 'home/door', payload: Buffer.from('ok'), qos: 1, messageId: 3, retain: false, dup: false } as Packet);
    await c.next('puback');
    expect(seen).toEqual(['home/door']);
    expect(h.broker.retainedFor('#')).toEqual([]);
    expect(h.broker.metrics.denials.get('publish')).toBe(3);
    expect(c.closed).toBe(false);
  });

  it('v5: answers denied QoS 1 and 2 with 0x87 and drops QoS 0', async () => {
    h = await startAuthBroker({ users: { alice: 'pw' }, acl: ACL });
    const seen = collect('#');
    const c = await alice(5);
    c.send({ cmd: 'publish', topic: 'out/bob', payload: Buffer.from('0'), qos: 0, retain: false, dup: false } as Packet);
    c.send({ cmd: 'publish', topic: 'out/bob', payload: Buffer.from('1'), qos: 1, messageId: 1, retain: false, dup: false } as Packet);
    expect((await c.next('puback')).reasonCode).toBe(0x87);
    c.send({ cmd: 'publish', topic: 'out/bob', payload: Buffer.from('2'), qos: 2, messageId: 2, retain: false, dup: false } as Packet);
    expect((await c.next('pubrec')).reasonCode).toBe(0x87);
    c.send({ cmd: 'publish', topic: 'out/alice', payload: Buffer.from('ok'), qos: 1, messageId: 3, retain: false, dup: false } as Packet);
    expect((await c.next('puback')).reasonCode ?? 0).toBe(0);
    expect(seen).toEqual(['out/alice']);
  });

  it('refuses a CONNECT whose Will topic the client may not write', async () => {
    h = await startAuthBroker({ users: { alice: 'pw' }, acl: ACL });
    const c = h.client(5);
    const ack = await c.connect({ clientId: 'w', username: 'alice', password: Buffer.from('pw'), will: { topic: 'secret/will', payload: Buffer.from('x'), qos: 0, retain: false } });
    expect(ack.reasonCode).toBe(0x87);
    expect(h.broker.metrics.denials.get('will')).toBe(1);
  });

  it('lets a client id section and anonymous clients have their own rules, and denies the rest', async () => {
    h = await startAuthBroker({ users: { alice: 'pw' }, acl: ACL });
    const w = h.client(4);
    await w.connect({ clientId: 'watcher' });
    w.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] } as Packet);
    expect((await w.next('suback')).granted).toEqual([0]);
    const anon = h.client(4);
    await anon.connect({ clientId: 'nobody' });
    anon.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] } as Packet);
    expect((await anon.next('suback')).granted).toEqual([0x80]);
  });
});

describe('setAccessControl', () => {
  it('does not publish the Will of a client whose topic the reloaded ACL no longer lets it write, as it refuses its publishes', async () => {
    h = await startAuthBroker({ users: { alice: 'pw' }, acl: 'user alice\nwrite status/#\n' });
    const seen = collect('#');
    const will = { payload: Buffer.from('gone'), qos: 0, retain: false } as const;
    const kept = h.client(4);
    await kept.connect({ clientId: 'kept', username: 'alice', password: Buffer.from('pw'), will: { topic: 'status/kept', ...will } });
    const revoked = h.client(5);
    await revoked.connect({ clientId: 'revoked', username: 'alice', password: Buffer.from('pw'), will: { topic: 'status/revoked', ...will } });
    h.broker.setAccessControl(await accessControl({ users: { alice: 'pw' }, acl: 'user alice\nwrite status/kept\n' }));
    kept.destroy();
    revoked.destroy();
    await kept.waitClosed();
    await revoked.waitClosed();
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['status/kept']);
    expect(h.broker.metrics.denials.get('will')).toBe(1);
  });

  it('applies new rules to later publishes and deliveries without disconnecting anyone', async () => {
    h = await startAuthBroker({ users: { alice: 'pw' }, acl: ACL });
    const seen = collect('#');
    const c = await alice(5);
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'home/#', qos: 0 }] } as Packet);
    await c.next('suback');
    h.broker.setAccessControl(await accessControl({ users: { alice: 'pw' }, acl: 'user alice\nwrite home/#\nread home/kitchen/#\n' }));
    c.send({ cmd: 'publish', topic: 'home/door', payload: Buffer.from('a'), qos: 1, messageId: 2, retain: false, dup: false } as Packet);
    expect((await c.next('puback')).reasonCode ?? 0).toBe(0);
    c.send({ cmd: 'publish', topic: 'home/kitchen/t', payload: Buffer.from('b'), qos: 1, messageId: 3, retain: false, dup: false } as Packet);
    await c.next('puback');
    const delivered = (await c.settle(30)).filter((p) => p.cmd === 'publish').map((p) => (p as { topic: string }).topic);
    expect(delivered).toEqual(['home/kitchen/t']); // home/door is no longer readable
    expect(seen).toEqual(['home/door', 'home/kitchen/t']);
    expect(c.closed).toBe(false);
    h.broker.setAccessControl(await accessControl({ users: { alice: 'pw' }, acl: 'user alice\nread home/#\n' }));
    c.send({ cmd: 'publish', topic: 'home/door', payload: Buffer.from('c'), qos: 1, messageId: 4, retain: false, dup: false } as Packet);
    expect((await c.next('puback')).reasonCode).toBe(0x87);
  });

  it('reads a resumed persistent session with the rights of the user who resumed it', async () => {
    h = await startAuthBroker({ users: { alice: 'pw', bob: 'pw' }, acl: 'user alice\nread home/#\nuser bob\nread home/kitchen/#\n' });
    const a = h.client(4);
    await a.connect({ clientId: 'shared-id', clean: false, username: 'alice', password: Buffer.from('pw') });
    a.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'home/#', qos: 0 }] } as Packet);
    expect((await a.next('suback')).granted).toEqual([0]);
    a.send({ cmd: 'disconnect' } as Packet);
    await a.waitClosed();
    const b = h.client(4);
    const ack = await b.connect({ clientId: 'shared-id', clean: false, username: 'bob', password: Buffer.from('pw') });
    expect(ack.sessionPresent).toBe(true);
    for (const topic of ['home/door', 'home/kitchen/t']) h.broker.publish({ topic, payload: Buffer.from('x'), qos: 0, retain: false, origin: { kind: 'system', id: 't' } });
    const got = (await b.settle(30)).filter((p) => p.cmd === 'publish').map((p) => (p as { topic: string }).topic);
    expect(got).toEqual(['home/kitchen/t']);
  });

  it('drops, when another user resumes a persistent session, the queued and unacknowledged messages that user may not read', async () => {
    h = await startAuthBroker({ users: { alice: 'pw', bob: 'pw' }, acl: 'user alice\nread home/#\nuser bob\nread home/kitchen/#\n' });
    const a = h.client(4);
    await a.connect({ clientId: 'shared-id', clean: false, username: 'alice', password: Buffer.from('pw') });
    a.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'home/#', qos: 1 }] } as Packet);
    expect((await a.next('suback')).granted).toEqual([1]);
    const publish = (topic: string) => h!.broker.publish({ topic, payload: Buffer.from(topic), qos: 1, retain: false, origin: { kind: 'system', id: 't' } });
    publish('home/garage'); // sent to alice, never acknowledged
    expect((await a.next('publish')).topic).toBe('home/garage');
    a.destroy();
    await a.waitClosed();
    for (const topic of ['home/door', 'home/kitchen/t']) publish(topic); // queued while offline, with alice's rights
    const b = h.client(4);
    const ack = await b.connect({ clientId: 'shared-id', clean: false, username: 'bob', password: Buffer.from('pw') });
    expect(ack.sessionPresent).toBe(true);
    const got = (await b.settle(50)).filter((p) => p.cmd === 'publish').map((p) => (p as { topic: string }).topic);
    expect(got).toEqual(['home/kitchen/t']);
    expect(h.broker.metrics.denials.get('delivery')).toBe(2);
  });
});

describe('ACL and shared subscriptions', () => {
  it('gives a message of a shared group to a member that may read it, passing over one that may not, so the group loses nothing', async () => {
    h = await startAuthBroker({ users: { alice: 'pw', bob: 'pw' }, acl: ['user alice', 'readwrite home/#', 'user bob', 'read home/public/#'].join('\n') });
    const clients: Record<string, RawClient> = {};
    for (const user of ['alice', 'bob']) {
      const c = (clients[user] = h.client(5));
      expect((await c.connect({ clientId: user, username: user, password: Buffer.from('pw') })).reasonCode).toBe(0);
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/home/#', qos: 0 }] } as Packet);
      expect((await c.next('suback')).granted).toEqual([0]);
    }
    for (let i = 0; i < 4; i++) {
      for (const t of ['home/public/x', 'home/private/x']) h.broker.publish({ topic: t, payload: Buffer.from(String(i)), qos: 0, retain: false, origin: { kind: 'system', id: 't' } });
    }
    const members: Record<string, string[]> = {};
    for (const user of ['alice', 'bob']) members[user] = (await clients[user]!.settle(100)).flatMap((p) => (p.cmd === 'publish' ? [p.topic] : []));
    expect(members['bob']!.every((t) => t === 'home/public/x')).toBe(true);
    expect(members['alice']!.filter((t) => t === 'home/private/x')).toHaveLength(4);
    expect(members['alice']!.length + members['bob']!.length).toBe(8);
    expect(h.broker.metrics.denials.get('delivery') ?? 0).toBe(0);
  });
});
