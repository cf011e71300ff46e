/**
 * A real Gateway on 127.0.0.1 with an OS-assigned port, configured through the same
 * YAML parser and schema as production, for end-to-end tests with real peers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { silentLog } from './broker-harness.js';

export interface RunningGateway {
  gateway: Gateway;
  host: string;
  port: number;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a gateway; `brokerYaml` is extra YAML under `broker:` (e.g. "max_queued_messages: 10"),
 * `topYaml` extra top-level YAML (e.g. an `auth:` section).
 */
export async function startGateway(brokerYaml = '', topYaml = ''): Promise<RunningGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-e2e-'));
  const text = [
    'listeners:',
    '  - type: mqtt',
    '    host: 127.0.0.1',
    '    port: 0',
    `store: { dir: ${JSON.stringify(join(dir, 'data'))} }`,
    ...(brokerYaml ? ['broker:', ...brokerYaml.split('\n').map((l) => `  ${l}`)] : []),
    ...(topYaml ? [topYaml] : []),
  ].join('\n');
  const config = parseConfigText(text, 'e2e.yaml');
  const gateway = new Gateway(config, { log: silentLog });
  await gateway.start(new AbortController().signal);
  const { host, port } = gateway.addresses[0]!;
  let stopped = false;
  return {
    gateway,
    host,
    port,
    url: `mqtt://${host}:${port}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await gateway.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export { freePort } from './free-port.js';

/** Rejects after `ms` with a message naming what did not happen. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}
