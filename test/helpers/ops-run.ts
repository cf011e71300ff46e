/**
 * `outpost run` in-process (runCli) on a real gateway with real sockets: the way the ops
 * tests (metrics families, $SYS copies, status JSON, status page) see a running service.
 * Serial ports may be in memory (GatewayDeps.serialPorts); everything else is real.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type ProcessHooks } from '../../src/cli.js';
import { Gateway, type GatewayDeps } from '../../src/gateway.js';

export interface OpsRun {
  gateway: Gateway;
  /** MQTT listener port. */
  port: number;
  /** http://127.0.0.1:PORT of the metrics listener. */
  http: string;
  dir: string;
  lines: Record<string, unknown>[];
  stop(): Promise<number>;
}

/** `yaml` is appended to a base config (listener on port 0, JSON logs, state in a temp dir). */
export async function runOutpost(yaml: string, deps: Partial<GatewayDeps> = {}): Promise<OpsRun> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-ops-'));
  const file = join(dir, 'outpost.yaml');
  writeFileSync(file, `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nlog: { format: json }\nstore: { dir: ${JSON.stringify(join(dir, 'data'))} }\n${yaml}`);
  const lines: Record<string, unknown>[] = [];
  let onSignal: ((s: string) => void) | undefined;
  const proc: ProcessHooks = { onSignal: (fn) => ((onSignal = fn), () => (onSignal = undefined)), onCrash: () => () => undefined, exitNow: () => undefined };
  let gateway: Gateway | undefined;
  let err = '';
  const done = runCli(['run', '--config', file], {
    stdout: () => undefined,
    stderr: (t) => (err += t),
    process: proc,
    logDestination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    createGateway: (c, d) => (gateway = new Gateway(c, { ...d, ...deps })),
  });
  const waitLog = async (msg: string) => {
    for (let i = 0; i < 500; i++) {
      const l = lines.find((x) => x['msg'] === msg);
      if (l) return l;
      const fatal = lines.find((x) => x['level'] === 60);
      if (fatal) throw new Error(`outpost run failed: ${String(fatal['msg'])} ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no "${msg}" log line: ${JSON.stringify(lines)} ${err}`);
  };
  const metrics = (await waitLog('metrics listening')) as unknown as { address: { port: number } };
  await waitLog('gateway started');
  return {
    gateway: gateway!,
    port: gateway!.addresses[0]!.port,
    http: `http://127.0.0.1:${metrics.address.port}`,
    dir,
    lines,
    async stop() {
      onSignal?.('SIGTERM');
      const code = await done;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** Polls `check` every 50 ms until it returns true; throws naming `what` after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
