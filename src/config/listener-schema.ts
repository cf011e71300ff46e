/**
 * Listener kinds, a union discriminated on `type`:
 *
 *   mqtt   plain TCP               (default 127.0.0.1:1883)
 *   mqtts  MQTT over TLS           (8883)
 *   ws     MQTT over WebSocket     (8080, path /mqtt, subprotocol "mqtt")
 *   wss    MQTT over WebSocket over TLS (8081)
 *
 * TLS file paths are read at start-up (a missing file stops it, naming the key) and
 * watched afterwards: a renewed certificate applies to new connections.
 */
import { z } from 'zod';
import { notPemText } from './pem-path.js';
import { normalizeOrigin } from '../core/web-origin.js';

const port = (dflt: number) =>
  z.number().int().min(0).max(65535).default(dflt).describe('TCP port; 0 picks a free port (tests use this).');
const host = () => z.string().min(1).default('127.0.0.1').describe('Address to bind; 0.0.0.0 for every IPv4 interface.');

const tlsKeys = {
  cert: z.string().min(1).superRefine(notPemText).describe('PEM file with the server certificate (and its chain); relative to the config file.'),
  key: z.string().min(1).superRefine(notPemText).describe('PEM file with the private key of cert; relative to the config file.'),
  ca: z.string().min(1).superRefine(notPemText).optional().describe('PEM file with the CA(s) client certificates must chain to (needed for require_certificate); relative to the config file.'),
  crl: z
    .string()
    .min(1)
    .superRefine(notPemText)
    .optional()
    .describe('PEM file with the certificate revocation list(s) of ca (openssl ca -gencrl): a client certificate it lists is refused (needs require_certificate). Read again with the other files on reload and when it changes; relative to the config file.'),
  min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Oldest TLS version accepted.'),
  require_certificate: z.boolean().default(false).describe('Mutual TLS: a client must present a certificate signed by ca.'),
  use_identity_as_username: z
    .boolean()
    .default(false)
    .describe("With require_certificate: the client certificate's CN is the user name (the CONNECT user name is ignored)."),
};

const wsKeys = {
  path: z
    .string()
    .regex(/^\//, 'must start with /')
    .default('/mqtt')
    .describe('HTTP path of the WebSocket endpoint; other paths are refused.'),
  allowed_origins: z
    .array(
      z.string().refine(isOriginEntry, {
        message: 'must be a web origin like "https://dash.example:8443" (scheme, host, optional port; no path) or "*"',
      }),
    )
    .default([])
    .describe(
      'Web pages (by Origin) whose browsers may open this WebSocket; "*" admits any. Default none: a browser request is refused with HTTP 403, so a page from any site cannot use the broker through a browser on the site. Clients that send no Origin (MQTT.js under Node, mosquitto) are always admitted.',
    ),
};

/** "*", or an http(s) origin as a browser sends it in the Origin header (compared after normalizeOrigin). */
function isOriginEntry(s: string): boolean {
  if (s === '*') return true;
  return normalizeOrigin(s) !== undefined;
}

/** mTLS needs a CA to check against; the identity and a CRL need mTLS. */
function checkTls(l: { ca?: string | undefined; crl?: string | undefined; require_certificate: boolean; use_identity_as_username: boolean }, ctx: z.RefinementCtx): void {
  if (l.require_certificate && l.ca === undefined) {
    ctx.addIssue({ code: 'custom', path: ['ca'], params: { absent: true }, message: 'require_certificate needs ca (the CA client certificates are checked against)' });
  }
  if (l.use_identity_as_username && !l.require_certificate) {
    ctx.addIssue({ code: 'custom', path: ['use_identity_as_username'], params: { plain: true }, message: 'needs require_certificate: true' });
  }
  if (l.crl !== undefined && !l.require_certificate) {
    ctx.addIssue({ code: 'custom', path: ['crl'], params: { plain: true }, message: 'needs require_certificate: true (a crl revokes client certificates)' });
  }
}

export const mqttListenerSchema = z
  .object({
    type: z.literal('mqtt').describe('Listener kind: mqtt (TCP) | mqtts (TLS) | ws (WebSocket) | wss (WebSocket over TLS).'),
    host: host(),
    port: port(1883),
  })
  .strict();

export const mqttsListenerSchema = z
  .object({ type: z.literal('mqtts'), host: host(), port: port(8883), ...tlsKeys })
  .strict()
  .superRefine(checkTls);

export const wsListenerSchema = z.object({ type: z.literal('ws'), host: host(), port: port(8080), ...wsKeys }).strict();

export const wssListenerSchema = z
  .object({ type: z.literal('wss'), host: host(), port: port(8081), ...wsKeys, ...tlsKeys })
  .strict()
  .superRefine(checkTls);

export const listenerSchema = z.discriminatedUnion('type', [mqttListenerSchema, mqttsListenerSchema, wsListenerSchema, wssListenerSchema], {
  error: (iss) => (iss.code === 'invalid_union' ? 'unknown listener type; use one of: mqtt, mqtts, ws, wss' : undefined),
});

export type ListenerConfig = z.infer<typeof listenerSchema>;
export type TlsListenerConfig = Extract<ListenerConfig, { type: 'mqtts' | 'wss' }>;
