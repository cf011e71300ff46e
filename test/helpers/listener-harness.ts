/**
 * A broker behind real listeners on 127.0.0.1 (OS-assigned ports) with captured log lines:
 * a plain mqtt listener to observe from, plus the listener under test.
 */
import pino from 'pino';
import { Broker } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { TcpListener } from '../../src/broker/tcp-listener.js';
import type { Service } from '../../src/core/lifecycle.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface ListenerHarness<L> {
  broker: Broker;
  listener: L;
  /** Port of the plain mqtt listener on the same broker. */
  plainPort: number;
  port: number;
  logs: LogLine[];
  /** Resolves when a log line with this message appears (or fails after ms). */
  waitLog(msg: string, ms?: number): Promise<LogLine>;
  stop(): Promise<void>;
}

export async function startListener<L extends Service & { address: { port: number } }>(
  make: (broker: Broker, log: pino.Logger) => L,
  options: Partial<BrokerOptions> = {},
): Promise<ListenerHarness<L>> {
  const logs: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const broker = new Broker({ connectTimeoutMs: 2000, ...options }, { log: log.child({ component: 'broker' }) });
  const plain = new TcpListener('127.0.0.1', 0, broker, log);
  const listener = make(broker, log.child({ component: 'listener' }));
  await broker.start();
  await plain.start();
  await listener.start(new AbortController().signal);
  const waitLog = async (msg: string, ms = 5000): Promise<LogLine> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = logs.find((l) => l.msg === msg);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no log line "${msg}" within ${ms} ms; got ${JSON.stringify(logs.map((l) => l.msg))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    broker,
    listener,
    plainPort: plain.address.port,
    port: listener.address.port,
    logs,
    waitLog,
    async stop() {
      await listener.stop();
      await plain.stop();
      await broker.stop();
    },
  };
}
