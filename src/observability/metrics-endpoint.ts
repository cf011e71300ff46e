/**
 * Builds the metrics listener for a running gateway: config slice + gateway views +
 * process runtime (event-loop delay from perf_hooks, RSS, bytes written) → MetricsServer
 * with /metrics, /healthz, /status.json and the status page.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import type { StuckComponent } from '../core/progress.js';
import type { Bus } from '../core/bus.js';
import { checkHealth, collectMetrics, renderMetrics, type GatewayView, type RuntimeView } from './gateway-metrics.js';
import { SysPublisher } from './sys-topics.js';
import { MetricsServer } from './metrics-server.js';
import { collectStatus, StatusHistory, type StatusView } from './status.js';
import type { ReloadSummary } from '../reload/reloader.js';

/** Process facts; the loop-delay histogram restarts at each read (mean since the last scrape). */
export function processRuntime(listenersUp: () => boolean, stuck?: () => readonly StuckComponent[]): RuntimeView & { close(): void } {
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  // The histogram's values include the 20 ms sampling resolution; subtract it to report the lag alone.
  const lagMs = (ns: number): number => (Number.isNaN(ns) ? 0 : Math.max(0, ns / 1e6 - 20));
  const eventLoopLag = (): { meanMs: number; p99Ms: number; maxMs: number } => {
    const lag = delay.count === 0 ? { meanMs: 0, p99Ms: 0, maxMs: 0 } : { meanMs: lagMs(delay.mean), p99Ms: lagMs(delay.percentile(99)), maxMs: lagMs(delay.max) };
    delay.reset();
    return lag;
  };
  return {
    now: () => Date.now(),
    eventLoopLagMs: () => eventLoopLag().meanMs,
    eventLoopLag,
    rssBytes: () => process.memoryUsage.rss(),
    heapBytes: () => {
      const m = process.memoryUsage();
      return { used: m.heapUsed, total: m.heapTotal, external: m.external };
    },
    storageWrittenBytes,
    listenersUp,
    ...(stuck === undefined ? {} : { stuck }),
    close: () => delay.disable(),
  };
}

/** write_bytes of /proc/self/io (Linux); undefined where there is no such file. */
function storageWrittenBytes(): number | undefined {
  try {
    const m = /^write_bytes: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Whether a gateway (or a CLI test double) can be observed. */
export function isObservable(gateway: object): gateway is GatewayView & StatusView {
  return 'broker' in gateway && 'bridges' in gateway;
}

/** The status page, read once (it ships beside this module; the build copies it to dist). */
let pageCache: string | undefined;
export function statusPage(): string {
  pageCache ??= readFileSync(new URL('./status-page.html', import.meta.url), 'utf8');
  return pageCache;
}

export interface MetricsServerHooks {
  /** Whether every listener is bound (the gateway finished starting). */
  listenersUp(): boolean;
  /** Components that stopped making progress (core/progress.ts); default none. */
  stuck?: () => readonly StuckComponent[];
  /** For /status.json; default 'unknown'. */
  version?: string;
  /** Config reloads (reload/reloader.ts); without it /metrics and the status leave them out. */
  reloads?: () => ReloadSummary;
}

export function createMetricsServer(config: Config, gateway: GatewayView & StatusView, log: Logger, hooks: MetricsServerHooks): MetricsServer {
  const rt = Object.assign(processRuntime(hooks.listenersUp, hooks.stuck), hooks.reloads !== undefined ? { reloads: hooks.reloads } : {});
  const startedAt = Date.now();
  const limits = (name: string) => {
    const b = config.bridges.find((x) => x.name === name)?.buffer;
    return b && { maxBytes: b.max_bytes, maxRows: b.max_rows, maxAgeMs: b.max_age, whenFull: b.when_full };
  };
  const health = () => checkHealth(gateway, rt, limits, hooks.stuck?.() ?? []);
  const history = new StatusHistory(config.metrics.status_interval, config.metrics.status_history, systemClock, () => gateway.bridges);
  const server = new MetricsServer(config.metrics.host, config.metrics.port, {
    log,
    render: () => renderMetrics(gateway, rt),
    health,
    status: () => {
      const now = Date.now();
      return collectStatus(gateway, { version: hooks.version ?? 'unknown', now, uptimeSeconds: Math.round((now - startedAt) / 1000), health: health(), history, lastReload: hooks.reloads?.().last });
    },
    page: statusPage,
  });
  const start = server.start.bind(server);
  server.start = async () => {
    await start();
    history.start();
  };
  const stop = server.stop.bind(server);
  server.stop = async () => {
    history.stop();
    rt.close();
    await stop();
  };
  return server;
}

/**
 * The counters of /metrics as retained $SYS/outpost/... messages every metrics.sys_interval
 * (0 = off), on the gateway's own broker.
 */
export function createSysPublisher(
  config: Config,
  gateway: GatewayView,
  listenersUp: () => boolean,
  stuck: () => readonly StuckComponent[],
): { start(): void; stop(): void } | undefined {
  const broker = gateway.broker as GatewayView['broker'] & Partial<Pick<Bus, 'publish'>>;
  if (config.metrics.sys_interval <= 0 || broker.publish === undefined) return undefined;
  const rt = processRuntime(listenersUp, stuck);
  const sys = new SysPublisher(config.metrics.sys_interval, { bus: broker as Pick<Bus, 'publish'>, clock: systemClock, collect: () => collectMetrics(gateway, rt).families });
  return {
    start: () => sys.start(),
    stop: () => {
      sys.stop();
      rt.close();
    },
  };
}
