/**
 * The `metrics:` section: the HTTP listener for /metrics (Prometheus text format) and
 * /healthz. Loopback by default: the counters name clients and topics, so exposing them
 * on the LAN is the operator's explicit choice (host: 0.0.0.0).
 */
import { z } from 'zod';
import { duration } from './unit-schema.js';

/** Samples the status page history may hold (status_history / status_interval). */
// An hour at the shortest status_interval (100ms): either setting changed alone from its default stays valid.
export const MAX_STATUS_SAMPLES = 36_000;

export const metricsSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Serve /metrics and /healthz over HTTP.'),
    host: z.string().min(1).default('127.0.0.1').describe('Address to bind; 0.0.0.0 lets a Prometheus on the LAN scrape it.'),
    port: z.number().int().min(0).max(65535).default(9100).describe('TCP port; 0 picks a free port (tests use this).'),
    stuck_after: duration({ min: 100 })
      .prefault('30s')
      .describe('A component with work waiting and no progress for this long is stuck: /healthz says so and the systemd watchdog pings stop.'),
    sys_interval: duration()
      .prefault('30s')
      .describe('How often the counters are published as retained $SYS/outpost/... messages; 0 means never.'),
    status_interval: duration({ min: 100 })
      .prefault('10s')
      .describe('How often the status page history (backlog over time) takes a sample.'),
    status_history: duration({ min: 1000 })
      .prefault('1h')
      .describe(`How far back the status page history goes (kept in memory: status_history / status_interval samples, at most ${MAX_STATUS_SAMPLES}).`),
  })
  .strict()
  .superRefine((m, ctx) => {
    // Every sample is kept in memory and sent whole in each /status.json the page polls:
    // 30d at 1s would be 2.6 million of them on a Pi with 1 GB.
    const samples = Math.ceil(m.status_history / m.status_interval);
    if (samples > MAX_STATUS_SAMPLES) {
      ctx.addIssue({ code: 'custom', path: ['status_history'], params: { plain: true }, message: `keeps ${samples} samples of status_interval in memory, at most ${MAX_STATUS_SAMPLES}; shorten status_history or lengthen status_interval` });
    }
  });
