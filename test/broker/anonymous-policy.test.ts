import { duplexPair } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { anonymousPolicyLine, isLoopbackHost } from '../../src/broker/anonymous-policy.js';
import type { PeerInfo } from '../../src/broker/connection.js';
import { silentLog } from '../helpers/broker-harness.js';
import { RawClient } from '../helpers/raw-client.js';

describe('which hosts are loopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.10.0.5', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['192.168.1.20', false],
    ['fd00::1', false],
    ['gateway.local', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});

describe('the start-up line about anonymous clients', () => {
  const listeners = [
    { type: 'mqtt', host: '127.0.0.1', port: 1883 },
    { type: 'mqtts', host: '0.0.0.0', port: 8883 },
  ];

  it('says that anonymous clients are refused beyond loopback, naming those listeners', () => {
    expect(anonymousPolicyLine(listeners, false)).toEqual({
      level: 'info',
      msg: 'anonymous clients refused on listeners beyond loopback; set auth.allow_anonymous: true to admit them',
      listeners: ['mqtts://0.0.0.0:8883'],
    });
  });

  it('warns when allow_anonymous opens them', () => {
    expect(anonymousPolicyLine(listeners, true)?.level).toBe('warn');
  });

  it('says nothing when every listener is on loopback', () => {
    expect(anonymousPolicyLine([listeners[0]!], false)).toBeUndefined();
  });
});

describe('a listener that refuses anonymous clients', () => {
  const broker = new Broker({}, { log: silentLog });
  afterEach(() => undefined);

  function client(version: 4 | 5, peer: Partial<PeerInfo>): RawClient {
    const [a, b] = duplexPair();
    a.once('close', () => b.destroy());
    b.once('close', () => a.destroy());
    broker.handle(b, { transport: 'tcp', remoteAddress: '192.168.1.9', remotePort: 5000, refuseAnonymous: true, ...peer });
    return new RawClient(a, version);
  }

  it('answers an anonymous 3.1.1 client with return code 5 (not authorized) and closes', async () => {
    const c = client(4, {});
    expect((await c.connect({ clientId: 'anon' })).returnCode).toBe(5);
    await c.waitClosed();
  });

  it('answers an anonymous v5 client with reason 0x87 (not authorized)', async () => {
    const c = client(5, {});
    expect((await c.connect({ clientId: 'anon5', protocolVersion: 5 })).reasonCode).toBe(0x87);
    await c.waitClosed();
  });

  it('refuses a user name it cannot check with 4 / 0x86 (bad user name or password)', async () => {
    const c = client(4, {});
    expect((await c.connect({ clientId: 'u', username: 'alice', password: Buffer.from('x') })).returnCode).toBe(4);
    const c5 = client(5, {});
    expect((await c5.connect({ clientId: 'u5', username: 'alice', protocolVersion: 5 })).reasonCode).toBe(0x86);
  });

  it('admits a client identified by its certificate', async () => {
    const c = client(4, { identity: 'site-17' });
    expect((await c.connect({ clientId: 'cert' })).returnCode).toBe(0);
    c.end();
  });

  it('is the listener alone: the same broker admits anonymous clients from a loopback listener', async () => {
    const c = client(4, { refuseAnonymous: false });
    expect((await c.connect({ clientId: 'local' })).returnCode).toBe(0);
    c.end();
  });
});
