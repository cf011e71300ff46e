/**
 * In-memory connections that behave like TCP on a reset, which `duplexPair()` alone
 * does not: destroying either side destroys the other, so the broker sees a client's
 * socket die and the client sees the broker destroy its socket. Tests of abnormal
 * closes and connect timeouts need this; the harness `client()` is fine otherwise.
 */
import { duplexPair, type Duplex } from 'node:stream';
import type { Broker } from '../../src/broker/broker.js';
import { RawClient } from './raw-client.js';

export interface LinkedClient {
  client: RawClient;
  /** The broker's end of the connection. */
  server: Duplex;
}

let nextPort = 40000;

export function linkedPair(): [client: Duplex, server: Duplex] {
  const [a, b] = duplexPair();
  a.once('close', () => b.destroy());
  b.once('close', () => a.destroy());
  return [a, b];
}

export function linkedClient(broker: Broker, version: 3 | 4 | 5 = 4): LinkedClient {
  const [a, b] = linkedPair();
  broker.handle(b, { transport: 'memory', remoteAddress: '10.0.0.2', remotePort: nextPort++ });
  return { client: new RawClient(a, version), server: b };
}
