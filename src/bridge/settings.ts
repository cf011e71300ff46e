/**
 * From the validated config of one bridge to the settings the Bridge runs with.
 * TLS files are read when a connection is made (so a renewed certificate is used on
 * the next reconnect) and once at start, so a missing file stops start-up clearly.
 * The client certificate and the CA read for each connection go to the certificate expiry
 * gauge when one is given (observability/certificate-expiry.ts).
 */
import type { Logger } from 'pino';
import type { BridgeConfig } from '../config/schema.js';
import { OutpostError } from '../core/errors.js';
import { PEM_FIX, readBoundedFile, readFailure } from '../config/read-file.js';
import type { CertificateExpiry } from '../observability/certificate-expiry.js';
import type { BridgeSettings } from './bridge.js';
import type { UpstreamTls } from './upstream.js';

/** Where a running bridge reports the certificates it reads, and the logger of its lines. */
export interface CertificateReport {
  certificates: CertificateExpiry;
  log: Logger;
}

export function bridgeSettings(b: BridgeConfig, index: number, report?: CertificateReport): BridgeSettings {
  const clientId = b.client_id ?? `outpost-${b.name}`;
  const files = { ca: b.ca, cert: b.cert, key: b.key };
  if ((b.cert === undefined) !== (b.key === undefined)) {
    throw new OutpostError('CONFIG_INVALID', `bridges[${index}] (${b.name}): cert and key go together; set both for mutual TLS or neither`);
  }
  const tls = (): UpstreamTls => {
    const out: UpstreamTls = {};
    const owner = { bridge: b.name };
    if (files.ca !== undefined) {
      out.ca = readBoundedFile(files.ca);
      report?.certificates.update({ use: 'bridge-ca', owner, file: files.ca, setting: `bridges[${index}].ca` }, out.ca, report.log);
    }
    if (files.cert !== undefined) {
      out.cert = readBoundedFile(files.cert);
      report?.certificates.update({ use: 'bridge', owner, file: files.cert, setting: `bridges[${index}].cert` }, out.cert, report.log);
    }
    if (files.key !== undefined) out.key = readBoundedFile(files.key);
    if (b.servername !== undefined) out.servername = b.servername;
    return out;
  };
  return {
    name: b.name,
    stateTopic: b.state_topic ?? `outpost/${clientId}/state`,
    inflight: b.inflight,
    order: b.order,
    identity: b.identity ?? (b.protocol === 5 ? 'properties' : 'none'),
    rate: b.rate === undefined ? undefined : { msgsPerSec: b.rate.msgs_per_sec, bytesPerSec: b.rate.bytes_per_sec },
    rules: b.rules,
    limits: { maxBytes: b.buffer.max_bytes, maxRows: b.buffer.max_rows, maxAgeMs: b.buffer.max_age, whenFull: b.buffer.when_full },
    upstream: {
      url: b.url,
      clientId,
      username: b.username,
      password: b.password,
      tls,
      protocolVersion: b.protocol,
      keepalive: b.keepalive / 1000,
      cleanStart: b.clean_start,
      sessionExpiry: b.session_expiry / 1000,
      connectTimeoutMs: b.connect_timeout,
      backoff: { baseMs: b.backoff.base, capMs: b.backoff.cap },
    },
  };
}

/** Reads every TLS file once, so a wrong path stops start-up with the key that names it. */
export function checkTlsFiles(b: BridgeConfig, index: number): void {
  for (const key of ['ca', 'cert', 'key'] as const) {
    const file = b[key];
    if (file === undefined) continue;
    try {
      readBoundedFile(file);
    } catch (err) {
      throw new OutpostError('CONFIG_INVALID', `bridges[${index}].${key}: ${readFailure(file, err, PEM_FIX)}`, { cause: err });
    }
  }
}
