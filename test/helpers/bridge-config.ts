/**
 * A `bridges:` entry (YAML keys) to the test Mosquitto over mutual TLS: the test CA, the
 * client certificate (CN site-17), quick reconnects. `extra` adds keys or overrides these.
 */
import { testCerts } from './certs.js';

export function mtlsBridge(port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const certs = testCerts();
  return {
    name: 'cloud',
    url: `mqtts://127.0.0.1:${port}`,
    client_id: 'site-17',
    ca: certs.ca.crt,
    cert: certs.client.crt,
    key: certs.client.key,
    backoff: { base: '100ms', cap: '300ms' },
    ...extra,
  };
}
