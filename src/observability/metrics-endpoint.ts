/**
 * Builds the metrics listener for a running gateway: config slice + gateway views +
 * process runtime (event-loop delay from perf_hooks, RSS) → MetricsServer.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { StuckComponent } from '../core/progress.js';
import { checkHealth, renderMetrics, type GatewayView, type RuntimeView } from './gateway-metrics.js';
import { MetricsServer } from './metrics-server.js';

/** Process facts; the loop-delay histogram restarts at each read (mean since the last scrape). */
export function processRuntime(listenersUp: () => boolean): RuntimeView & { close(): void } {
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  return {
    now: () => Date.now(),
    eventLoopLagMs: () => {
      // mean includes the 20 ms sampling resolution; subtract it to report the lag alone
      const mean = Number.isNaN(delay.mean) ? 0 : Math.max(0, delay.mean / 1e6 - 20);
      delay.reset();
      return mean;
    },
    rssBytes: () => process.memoryUsage.rss(),
    listenersUp,
    close: () => delay.disable(),
  };
}

/** Whether a gateway (or a CLI test double) can be observed. */
export function isObservable(gateway: object): gateway is GatewayView {
  return 'broker' in gateway && 'bridges' in gateway;
}

export interface MetricsServerHooks {
  /** Whether every listener is bound (the gateway finished starting). */
  listenersUp(): boolean;
  /** Components that stopped making progress (core/progress.ts); default none. */
  stuck?: () => readonly StuckComponent[];
}

export function createMetricsServer(config: Config, gateway: GatewayView, log: Logger, hooks: MetricsServerHooks): MetricsServer {
  const rt = processRuntime(hooks.listenersUp);
  const limits = (name: string) => {
    const b = config.bridges.find((x) => x.name === name)?.buffer;
    return b && { maxBytes: b.max_bytes, maxRows: b.max_rows, maxAgeMs: b.max_age, whenFull: b.when_full };
  };
  const server = new MetricsServer(config.metrics.host, config.metrics.port, {
    log,
    render: () => renderMetrics(gateway, rt),
    health: () => checkHealth(gateway, rt, limits, hooks.stuck?.() ?? []),
  });
  const stop = server.stop.bind(server);
  server.stop = async () => {
    rt.close();
    await stop();
  };
  return server;
}
