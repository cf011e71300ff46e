/**
 * A listener that cannot be bound stops start-up with one sentence that says what to do,
 * also when its host is not an address of this machine or does not resolve.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { bindServer } from '../../src/broker/listen.js';

describe('binding a listener', () => {
  it('to an address this machine does not have says so and to fix the host in listeners', async () => {
    const server = createServer();
    // 203.0.113.1 is TEST-NET-3 (RFC 5737): never an address of this machine.
    await expect(bindServer(server, '203.0.113.1', 0, 'MQTT')).rejects.toThrow(
      'MQTT listener 203.0.113.1:0 is not an address of this machine (EADDRNOTAVAIL); fix its host in listeners (0.0.0.0 binds every IPv4 interface)',
    );
    server.close();
  });

  it('to a host name that does not resolve says so and to fix the host in listeners', async () => {
    const server = createServer();
    await expect(bindServer(server, 'no-such-host.invalid', 0, 'MQTT')).rejects.toThrow(
      /^MQTT listener no-such-host\.invalid:0 has a host name that does not resolve \((ENOTFOUND|EAI_AGAIN)\); fix its host in listeners$/,
    );
    server.close();
  });
});
