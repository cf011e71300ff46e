// Composition root. Placeholder signature so the CLI can be built against it;
// the broker wiring lands in the broker commit.
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { Clock } from './core/clock.js';

export interface GatewayDeps {
  log: Logger;
  clock?: Clock;
}

export interface ListenerAddress {
  type: string;
  host: string;
  port: number;
}

export class Gateway {
  constructor(
    private readonly config: Config,
    private readonly deps: GatewayDeps,
  ) {}

  /** Addresses actually bound (port 0 in config resolves to a real port). */
  get addresses(): ListenerAddress[] {
    return [];
  }

  async start(_signal: AbortSignal): Promise<void> {
    void this.config;
    void this.deps;
  }

  async stop(): Promise<void> {}
}
