/**
 * Web origins (RFC 6454) for the WebSocket listeners' Origin check: a browser names the
 * page that opens a WebSocket in the Origin header; other clients send none.
 */

/**
 * An Origin header or config entry in the form browsers compare (RFC 6454 §6.1): lower-case
 * scheme and host, the default port dropped. Undefined for anything else: a path, a user,
 * a query, "null" (sandboxed frames, file: pages), another scheme.
 */
export function normalizeOrigin(s: string): string | undefined {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  // URL accepts "https://a/x?y"; an origin has no path, query, fragment or credentials.
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || u.pathname !== '/') return undefined;
  return u.origin;
}

/**
 * Whether a WebSocket upgrade may proceed: no Origin header (not a browser) always, "*"
 * admits any, otherwise the normalised Origin must be one of `allowed` (normalised too).
 */
export function originAllowed(origin: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  if (allowed.has('*')) return true;
  const o = normalizeOrigin(origin);
  return o !== undefined && allowed.has(o);
}

/** The config list as originAllowed reads it. */
export function originSet(list: readonly string[]): ReadonlySet<string> {
  return new Set(list.map((e) => (e === '*' ? e : normalizeOrigin(e) ?? e)));
}
