/**
 * Drives an UpstreamClient in tests: records every event and log line, and waits for
 * conditions on them.
 */
import { pino } from 'pino';
import { UpstreamClient, type UpstreamDeps } from '../../src/bridge/upstream-client.js';
import type { InboundMessage, UpstreamOptions, UpstreamSession } from '../../src/bridge/upstream.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export class Recorder {
  readonly ups: UpstreamSession[] = [];
  readonly downs: string[] = [];
  readonly acks: [number, number][] = [];
  readonly messages: InboundMessage[] = [];
  writables = 0;
  /** The sentence of each failed attempt to connect. */
  readonly attemptFailures: string[] = [];
  readonly logs: LogLine[] = [];
  /** Called on every ack and on writable (a test's own forwarder). */
  onAck: ((id: number, code: number) => void) | undefined;
  onWritable: (() => void) | undefined;

  readonly events = {
    up: (s: UpstreamSession) => this.ups.push(s),
    down: (reason: string) => this.downs.push(reason),
    acked: (id: number, code: number) => {
      this.acks.push([id, code]);
      this.onAck?.(id, code);
    },
    message: (m: InboundMessage) => this.messages.push(m),
    writable: () => {
      this.writables++;
      this.onWritable?.();
    },
    attemptFailed: (sentence: string) => void this.attemptFailures.push(sentence),
  };

  readonly log = pino({ level: 'debug' }, { write: (line: string) => void this.logs.push(JSON.parse(line) as LogLine) });

  /** Log lines at warn (40) or above. */
  warnings(): string[] {
    return this.logs.filter((l) => l.level >= 40).map((l) => l.msg);
  }

  async until(done: () => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; downs: ${JSON.stringify(this.downs)}; warnings: ${JSON.stringify(this.warnings())}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export const BASE_OPTIONS: Omit<UpstreamOptions, 'url'> = {
  clientId: 'site-17',
  protocolVersion: 5,
  keepalive: 30,
  cleanStart: true,
  sessionExpiry: 0,
  connectTimeoutMs: 3000,
  backoff: { baseMs: 50, capMs: 200 },
};

export function makeClient(options: Partial<UpstreamOptions> & { url: string }, deps: Partial<UpstreamDeps> = {}): { client: UpstreamClient; rec: Recorder } {
  const rec = new Recorder();
  const client = new UpstreamClient({ ...BASE_OPTIONS, ...options }, rec.events, { log: rec.log, ...deps });
  return { client, rec };
}
