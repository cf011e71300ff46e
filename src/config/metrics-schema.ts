/**
 * The `metrics:` section: the HTTP listener for /metrics (Prometheus text format) and
 * /healthz. Loopback by default: the counters name clients and topics, so exposing them
 * on the LAN is the operator's explicit choice (host: 0.0.0.0).
 */
import { z } from 'zod';

export const metricsSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Serve /metrics and /healthz over HTTP.'),
    host: z.string().min(1).default('127.0.0.1').describe('Address to bind; 0.0.0.0 lets a Prometheus on the LAN scrape it.'),
    port: z.number().int().min(0).max(65535).default(9100).describe('TCP port; 0 picks a free port (tests use this).'),
  })
  .strict();
