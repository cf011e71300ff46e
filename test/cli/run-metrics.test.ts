/** `outpost run` with the real gateway serves /metrics and /healthz, and frees the port on stop. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, type ProcessHooks } from '../../src/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-run-metrics-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(configText: string) {
  const file = join(tmp, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, configText);
  const lines: Record<string, unknown>[] = [];
  let onSignal: ((s: string) => void) | undefined;
  const proc: ProcessHooks = { onSignal: (fn) => ((onSignal = fn), () => (onSignal = undefined)), onCrash: () => () => undefined, exitNow: () => undefined };
  let err = '';
  const done = runCli(['run', '--config', file], {
    stdout: () => undefined,
    stderr: (t) => (err += t),
    process: proc,
    logDestination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
  });
  const waitLog = async (msg: string) => {
    for (let i = 0; i < 250; i++) {
      const l = lines.find((x) => x['msg'] === msg);
      if (l) return l;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no "${msg}" log line: ${JSON.stringify(lines)}`);
  };
  return { done, waitLog, lines, stop: () => onSignal?.('SIGTERM'), err: () => err };
}

const base = `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nlog: { format: json }\nstore: { dir: ${JSON.stringify(join(tmp, 'data'))} }\n`;

describe('outpost run with metrics', () => {
  it('serves /metrics and /healthz from the running gateway once started, and closes the port on stop', async () => {
    const r = run(`${base}metrics: { host: 127.0.0.1, port: 0 }\n`);
    const { address } = (await r.waitLog('metrics listening')) as unknown as { address: { port: number } };
    await r.waitLog('gateway started');
    const url = `http://127.0.0.1:${address.port}`;
    const families = parsePrometheusTextFormat(await (await fetch(`${url}/metrics`)).text());
    expect(families.find((f) => f.name === 'outpost_up')?.metrics[0]?.value).toBe('1');
    expect(Number(families.find((f) => f.name === 'outpost_resident_memory_bytes')?.metrics[0]?.value)).toBeGreaterThan(1e6);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ healthy: true, problems: [], components: { listeners: 'ok', store: 'ok' } });
    r.stop();
    expect(await r.done).toBe(0);
    await expect(fetch(`${url}/metrics`)).rejects.toThrow();
  });

  it('opens no metrics port with metrics.enabled: false', async () => {
    const r = run(`${base}metrics: { enabled: false }\n`);
    await r.waitLog('gateway started');
    expect(r.lines.some((l) => l['msg'] === 'metrics listening')).toBe(false);
    r.stop();
    expect(await r.done).toBe(0);
  });

  it('keeps serving MQTT when the metrics port is taken, with one error line naming the port', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const taken = (blocker.address() as { port: number }).port;
    try {
      const r = run(`${base}metrics: { host: 127.0.0.1, port: ${taken} }\n`);
      await r.waitLog('gateway started');
      const errors = r.lines.filter((l) => l['level'] === 'error');
      expect(errors.map((l) => l['msg'])).toEqual([`metrics not served: metrics listener 127.0.0.1:${taken} is already in use; set metrics.port to a free port or metrics.enabled: false`]);
      r.stop();
      expect(await r.done).toBe(0);
    } finally {
      blocker.close();
    }
  });
});
