/**
 * `outpost status [--url URL]`: asks the running gateway's metrics listener for /status.json
 * and prints a compact table. A gateway that does not answer is one sentence and exit 1.
 */
import type { StatusDoc } from './status.js';

export const DEFAULT_STATUS_URL = 'http://127.0.0.1:9100';

export interface StatusCommandDeps {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Default: global fetch. */
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/**
 * Client ids come from the network: a control character in one (ESC starts a terminal
 * escape sequence that can clear the screen, retitle the window or write the clipboard) is
 * shown as \xNN instead of reaching the operator's terminal; bidi overrides as \uNNNN.
 */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}

function table(head: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [head, ...rows].map((r) => r.map((c) => printable(String(c))));
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

function age(s: number): string {
  if (s < 90) return `${s}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export function formatStatus(st: StatusDoc): string {
  const out: string[] = [];
  out.push(`outpost ${st.version}, up ${age(st.uptimeSeconds)}: ${st.healthy ? 'healthy' : `UNHEALTHY (${printable(st.problems.join('; '))})`}\n`);
  // `systemctl reload` succeeded either way: a rejected file is said here until a reload applies.
  const r = st.lastReload;
  if (r !== undefined && !r.applied) {
    out.push(`\nconfig: the last reload (${age(Math.max(0, Math.round((st.now - r.at) / 1000)))} ago) was rejected, the previous config is running: ${printable((r.reason ?? '').split('\n').join('; '))}\n`);
  }
  out.push(`\nclients: ${st.clients.connected} connected\n`);
  if (st.clients.list.length > 0) out.push(table(['CLIENT', 'ADDRESS', 'TRANSPORT', 'MQTT'], st.clients.list.map((c) => [c.clientId, c.address, c.transport, c.protocol === 5 ? '5.0' : '3.1.1'])));
  if (st.devices.length > 0) {
    out.push(`\nserial devices: ${st.devices.filter((d) => d.online).length}/${st.devices.length} online\n`);
    out.push(table(['DEVICE', 'STATE', 'FRAMES', 'READINGS', 'PUBLISHED', 'ERRORS'], st.devices.map((d) => [d.id, d.online ? 'online' : 'offline', d.frames, d.readings, d.published, d.errors])));
  }
  const states = Object.entries(st.sensors.byState).filter(([, n]) => n > 0);
  if (states.length > 0) out.push(`\nmqtt-sn sensors: ${states.map(([s, n]) => `${n} ${s}`).join(', ')}\n`);
  if (st.bridges.length > 0) {
    out.push('\nbridges:\n');
    out.push(table(['BRIDGE', 'LINK', 'BACKLOG', 'BYTES', 'OLDEST', 'INFLIGHT', 'SENT', 'RECONNECTS'],
      st.bridges.map((b) => [b.name, b.link, b.rows, b.bytes, b.rows > 0 ? age(b.oldestAgeSeconds) : '-', b.inflight, b.sent, b.reconnects])));
    for (const b of st.bridges) if (b.lastFailure !== undefined) out.push(`bridge ${b.name}: ${printable(b.lastFailure.sentence)}\n`);
  }
  return out.join('');
}

export async function statusCommand(url: string | undefined, deps: StatusCommandDeps): Promise<number> {
  // The listener's address; the URL of one of its pages (the README's /metrics) means the same.
  const base = (url ?? DEFAULT_STATUS_URL).replace(/\/+$/, '').replace(/\/(metrics|healthz|status\.json)$/, '');
  let target: URL;
  try {
    target = new URL(`${base}/status.json`);
  } catch {
    deps.stderr(`outpost status: "${url}" is not a URL; give the metrics listener as --url http://HOST:PORT\n`);
    return 2;
  }
  let doc: StatusDoc;
  try {
    const res = await (deps.fetch ?? fetch)(target, { signal: AbortSignal.timeout(deps.timeoutMs ?? 5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    doc = (await res.json()) as StatusDoc;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = e.cause?.code ?? (e.name === 'TimeoutError' ? 'no answer in time' : e.message);
    deps.stderr(`outpost status: no outpost answers at ${base} (${why}); is the service running ("systemctl status outpost"), and is --url the metrics listener (metrics.host and metrics.port)?\n`);
    return 1;
  }
  deps.stdout(formatStatus(doc));
  return 0;
}
