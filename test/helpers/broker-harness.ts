/**
 * A broker on in-memory duplex pairs: no sockets, no ports. Most protocol tests use it.
 */
import { duplexPair } from 'node:stream';
import pino from 'pino';
import { Broker } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import type { Clock } from '../../src/core/clock.js';
import { RawClient } from './raw-client.js';

export const silentLog = pino({ level: 'silent' });

export interface Harness {
  broker: Broker;
  /** A new connection; the broker side is attached immediately. */
  client(version?: 3 | 4 | 5): RawClient;
  /** A new connection as a plain duplex (for MQTT.js's stream builder). */
  stream(): import('node:stream').Duplex;
  close(): Promise<void>;
}

export function startBroker(options: Partial<BrokerOptions> = {}, clock?: Clock, log: pino.Logger = silentLog): Harness {
  const broker = new Broker(options, { log, clock });
  let port = 10000;
  const stream = () => {
    const [a, b] = duplexPair();
    // Like a TCP connection: when either side is destroyed, the peer sees the close too
    // (node's duplexPair does not propagate destroy by itself).
    a.once('close', () => b.destroy());
    b.once('close', () => a.destroy());
    broker.handle(b, { transport: 'memory', remoteAddress: '10.0.0.1', remotePort: port++ });
    return a;
  };
  return {
    broker,
    stream,
    client: (version = 4) => new RawClient(stream(), version),
    close: () => broker.close(),
  };
}
