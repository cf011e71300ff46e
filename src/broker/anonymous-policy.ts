/**
 * The safe default for anonymous clients: pure decisions, wired in gateway.ts.
 *
 *   listener host on loopback ─────────────────▶ anyone may connect (only local programs reach it)
 *   beyond loopback, auth.allow_anonymous false ▶ only authenticated clients (CONNACK 0x87 / 5 otherwise)
 *   beyond loopback, auth.allow_anonymous true ─▶ anyone, and start-up warns about it
 */
import { isIPv4, isIPv6 } from 'node:net';

/** True when only this machine can reach an address bound to `host`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false; // 0.0.0.0 and ::, LAN addresses, host names that resolve who knows where
}

export interface AnonymousPolicyLine {
  level: 'info' | 'warn';
  msg: string;
  listeners: string[];
}

/** The one start-up line about anonymous clients, or undefined when every listener is on loopback. */
export function anonymousPolicyLine(listeners: { type: string; host: string; port: number }[], allowAnonymous: boolean): AnonymousPolicyLine | undefined {
  const exposed = listeners.filter((l) => !isLoopbackHost(l.host)).map((l) => `${l.type}://${l.host}:${l.port}`);
  if (exposed.length === 0) return undefined;
  return allowAnonymous
    ? { level: 'warn', msg: 'anonymous clients allowed on listeners beyond loopback (auth.allow_anonymous: true)', listeners: exposed }
    : { level: 'info', msg: 'anonymous clients refused on listeners beyond loopback; set auth.allow_anonymous: true to admit them', listeners: exposed };
}
