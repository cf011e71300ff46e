// Bridge benchmark: durable ingest into outpost with the cloud down (synchronous full and
// normal), then the drain of the whole backlog to a real Mosquitto over mutual TLS; and
// Mosquitto's own bridge through the same cloud outage, in the same run.
// Run: npm run build && npm run bench:bridge -- --help
//
//   publishers (QoS 1, window) ──▶ outpost ──(cloud down … up)──mTLS──▶ cloud mosquitto ──▶ observer
//   publishers (QoS 1, window) ──▶ edge mosquitto (connection bridge) ──mTLS──▶ cloud mosquitto ──▶ observer
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { testCerts } from '../test/helpers/certs.js';
import { Mosquitto } from '../test/helpers/mosquitto.js';
import { wholeNumberOpt } from './lib/args.js';
import { DrainObserver, ingest, type DrainResult, type IngestResult } from './lib/bridge-load.js';
import { Child, CpuMeter, killChildrenSync, startEdgeMosquitto, startOutpost, type TlsFiles } from './lib/bridge-procs.js';
import { freePort } from './lib/brokers.js';
import { fmt } from './lib/report.js';
import { newRunId } from './lib/stamp.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_CMD = 'dist/src/main.js run --config {config}';

const USAGE = `Usage: npm run bench:bridge -- [options]

  --quick               smoke run, well under a minute (40k messages, 20k for mosquitto)
  --messages N          messages ingested per synchronous mode and then drained (default 1000000)
  --mosquitto-messages N  messages through Mosquitto's own bridge (default: --messages)
  --publishers N        QoS 1 publishers (default 8)
  --window N            unacknowledged PUBLISHes per publisher (default 64)
  --sync a,b            synchronous modes to ingest with: full,normal (default both; the drain
                        uses the backlog of the last one, full by default)
  --no-mosquitto        skip Mosquitto's own bridge
  --outpost-cmd CMD     outpost command, {config} substituted (default "${DEFAULT_CMD}")
  --timeout S           limit per ingest and per drain, seconds (default 300)
  --out FILE            markdown report (default bench/results/bridge-latest.md)
  -h, --help
`;

interface Options {
  messages: number;
  mosquittoMessages: number;
  publishers: number;
  window: number;
  sync: ('full' | 'normal')[];
  mosquitto: boolean;
  cmd: string;
  timeoutMs: number;
  out: string;
  quick: boolean;
}

function options(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      messages: { type: 'string' },
      'mosquitto-messages': { type: 'string' },
      publishers: { type: 'string' },
      window: { type: 'string' },
      sync: { type: 'string' },
      'no-mosquitto': { type: 'boolean' },
      'outpost-cmd': { type: 'string' },
      timeout: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick === true;
  const publishers = wholeNumberOpt(values.publishers, 'publishers', quick ? 4 : 8);
  // Whole messages per publisher.
  const round = (n: number) => Math.max(publishers, Math.round(n / publishers) * publishers);
  const messages = round(wholeNumberOpt(values.messages, 'messages', quick ? 40_000 : 1_000_000));
  const sync = (values.sync ?? 'normal,full').split(',').map((s) => s.trim());
  for (const s of sync) if (s !== 'full' && s !== 'normal') throw new Error(`--sync takes full and/or normal, got ${s}`);
  return {
    quick,
    messages,
    mosquittoMessages: round(wholeNumberOpt(values['mosquitto-messages'], 'mosquitto-messages', quick ? 20_000 : messages)),
    publishers,
    window: wholeNumberOpt(values.window, 'window', 64),
    sync: sync as ('full' | 'normal')[],
    mosquitto: values['no-mosquitto'] !== true,
    cmd: values['outpost-cmd'] ?? DEFAULT_CMD,
    timeoutMs: wholeNumberOpt(values.timeout, 'timeout', 300) * 1000,
    out: values.out ?? path.join(repoRoot, 'bench/results/bridge-latest.md'),
  };
}

interface IngestRow extends IngestResult {
  system: string;
  /** /proc write_bytes per message (NaN when not read). */
  diskPerMsg: number;
  cpu: number;
}

interface DrainRow extends DrainResult {
  system: string;
  buffered: number;
  diskPerMsg: number;
  cpu: number;
}

let tmpRoot: string | undefined;
let cloud: Mosquitto | undefined;
function cleanupSync(): void {
  killChildrenSync();
  if (cloud?.pid !== undefined) {
    try {
      process.kill(cloud.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (tmpRoot !== undefined) rmSync(tmpRoot, { recursive: true, force: true });
  tmpRoot = undefined;
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping`);
    cleanupSync();
    process.exit(130);
  });
}

const log = (line: string) => console.log(`[bridge-bench] ${line}`);

async function measureIngest(system: string, child: Child, o: Options, total: number, runId: number): Promise<IngestRow> {
  const io0 = child.writeBytes();
  const cpu = new CpuMeter(child);
  const r = await ingest(child.port, { publishers: o.publishers, perPublisher: total / o.publishers, window: o.window, runId, topicPrefix: 'sensors/p', timeoutMs: o.timeoutMs });
  const row = { system, ...r, cpu: cpu.percent(), diskPerMsg: (child.writeBytes() - io0) / r.messages };
  log(`${system}: ingest ${fmt(r.messages)} in ${r.seconds.toFixed(1)} s = ${fmt(r.msgsPerSec)} msg/s, PUBACK p50 ${fmt(r.p50)} ms p99 ${fmt(r.p99)} ms, ${fmt(row.diskPerMsg)} B/msg written, CPU ${row.cpu.toFixed(0)}%`);
  return row;
}

/** Brings the cloud up and counts what the bridge of `child` delivers. */
async function measureDrain(system: string, child: Child, observer: DrainObserver, o: Options, total: number, runId: number): Promise<DrainRow> {
  const io0 = child.writeBytes();
  const cpu = new CpuMeter(child);
  const since = performance.now();
  await cloud!.start();
  await observer.attach(cloud!.plainPort, runId, o.publishers, total / o.publishers);
  // Mosquitto's bridge retries every few seconds even with restart_timeout 1; outpost's within 0.5 s.
  const r = await observer.wait(since, 30_000, 5000, o.timeoutMs);
  const row = { system, buffered: total, ...r, cpu: cpu.percent(), diskPerMsg: (child.writeBytes() - io0) / Math.max(1, r.counts.unique) };
  const c = r.counts;
  log(`${system}: drain ${fmt(c.unique)}/${fmt(total)} in ${r.drainSeconds.toFixed(1)} s = ${fmt(r.msgsPerSec)} msg/s (lost ${c.lost}, dup ${c.dup}, out of order ${c.ooo})${r.incomplete ? `; ended: ${r.incomplete}` : ''}`);
  await observer.detach();
  return row;
}

async function main(): Promise<number> {
  const o = options(process.argv.slice(2));
  if (o === undefined) {
    console.log(USAGE);
    return 0;
  }
  if (o.cmd === DEFAULT_CMD && !existsSync(path.join(repoRoot, 'dist/src/main.js'))) {
    console.error('dist/src/main.js is missing: run `npm run build` first (or pass --outpost-cmd).');
    return 1;
  }
  const loadStart = os.loadavg()[0]!;
  const certs = testCerts();
  const tls: TlsFiles = { ca: certs.ca.crt, cert: certs.client.crt, key: certs.client.key };
  tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'outpost-bridge-bench-'));
  // The cloud: TLS listener with client certificates, persistence so the observer's session
  // (and the QoS 0 messages queued in it while it reconnects) survives the cloud's restarts.
  cloud = new Mosquitto({ requireCertificate: true, persistence: true, extra: ['queue_qos0_messages true'] });
  await cloud.start();
  const observer = new DrainObserver(`bridge-bench-observer-${process.pid}`, 'sites/17/sensors/#');
  await observer.register(cloud.plainPort);
  await cloud.stop();
  log(`cloud mosquitto: TLS ${cloud.tlsPort} (down until a drain), plain ${cloud.plainPort}; ${o.publishers} publishers × window ${o.window}, 64 B QoS 1`);

  const ingestRows: IngestRow[] = [];
  const drainRows: DrainRow[] = [];
  for (const [i, sync] of o.sync.entries()) {
    const dir = path.join(tmpRoot, `outpost-${sync}`);
    const outpost = startOutpost({ repoRoot, dir, port: await freePort(), synchronous: sync, cloudTlsPort: cloud.tlsPort, tls, cmd: o.cmd });
    await outpost.ready();
    const runId = newRunId();
    ingestRows.push(await measureIngest(`outpost, synchronous: ${sync}`, outpost, o, o.messages, runId));
    if (i === o.sync.length - 1) {
      drainRows.push(await measureDrain(`outpost (backlog from synchronous: ${sync})`, outpost, observer, o, o.messages, runId));
      await cloud.stop();
    }
    await outpost.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  if (o.mosquitto) {
    const variants = [
      { label: 'mosquitto bridge, default queue (max_queued_messages 1000)', maxQueued: undefined },
      { label: 'mosquitto bridge, max_queued_messages 0 (no limit, RAM only)', maxQueued: 0 },
    ];
    for (const v of variants) {
      const edge = startEdgeMosquitto({ dir: path.join(tmpRoot, `edge-${v.maxQueued ?? 'default'}`), port: await freePort(), cloudTlsPort: cloud.tlsPort, tls, maxQueued: v.maxQueued });
      await edge.ready();
      const runId = newRunId();
      ingestRows.push(await measureIngest(v.label, edge, o, o.mosquittoMessages, runId));
      drainRows.push(await measureDrain(v.label, edge, observer, o, o.mosquittoMessages, runId));
      await cloud.stop();
      await edge.stop();
    }
  }

  const report = render(o, ingestRows, drainRows, loadStart);
  console.log(`\n${report}`);
  mkdirSync(path.dirname(o.out), { recursive: true });
  writeFileSync(o.out, report);
  log(`written to ${path.relative(process.cwd(), o.out)}`);
  return 0;
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    return ((e as { stdout?: string }).stdout ?? '').trim() || 'unknown';
  }
}

function render(o: Options, ingestRows: IngestRow[], drainRows: DrainRow[], loadStart: number): string {
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : 'n/a');
  const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
  const ingest = [
    row(['system', 'messages', 'msgs/s', 'PUBACK p50 ms', 'p99 ms', 'max ms', 'disk bytes/msg', 'CPU %']),
    row(Array(8).fill('---')),
    ...ingestRows.map((r) => row([r.system, int(r.messages), int(r.msgsPerSec), ms(r.p50), ms(r.p99), ms(r.max), int(r.diskPerMsg), r.cpu.toFixed(0)])),
  ];
  const drain = [
    row(['system', 'buffered', 'arrived', 'lost / dropped', 'dup', 'out of order', 'drain msgs/s', 'drain s', 'cloud up → last msg s', 'disk bytes/msg', 'CPU %']),
    row(Array(11).fill('---')),
    ...drainRows.map((r) =>
      row([
        r.system,
        int(r.buffered),
        int(r.counts.unique),
        int(r.counts.lost),
        int(r.counts.dup),
        int(r.counts.ooo),
        int(r.msgsPerSec),
        ms(r.drainSeconds),
        ms(r.totalSeconds),
        int(r.diskPerMsg),
        r.cpu.toFixed(0),
      ]),
    ),
  ];
  const mosq = tryRun('mosquitto', ['-h']).split('\n')[0] ?? 'unknown';
  return [
    '# Bridge benchmark',
    '',
    `- date: ${new Date().toISOString()}, commit ${tryRun('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'])}${o.quick ? ' (--quick)' : ''}`,
    `- machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, ${mosq}`,
    `- 1-min load average: ${loadStart.toFixed(2)} at start, ${os.loadavg()[0]!.toFixed(2)} at end`,
    `- load: ${o.publishers} MQTT 3.1.1 publishers, QoS 1, window ${o.window} each, 64-byte payloads, topics sensors/p<i>; ` +
      `outpost: ${fmt(o.messages)} messages per synchronous mode; Mosquitto's bridge: ${fmt(o.mosquittoMessages)} messages`,
    '- cloud: Mosquitto with a TLS listener requiring client certificates; both bridges connect over mTLS; ' +
      'it is down (port closed) during every ingest and started for the drain; the observer is a raw QoS 0 subscriber on its plain port',
    '',
    '## Durable ingest (cloud down)',
    '',
    ...ingest,
    '',
    'outpost acknowledges a QoS 1 PUBLISH only after the message is committed to the SQLite outbox; Mosquitto acknowledges at once and keeps its bridge queue in RAM.',
    '',
    '## Drain to the cloud (Mosquitto over mTLS)',
    '',
    ...drain,
    '',
    '"lost / dropped" counts messages whose PUBLISH was acknowledged but that never reached the cloud. "drain msgs/s" is arrivals from the first to the last message; ' +
      '"cloud up → last msg" includes the bridge reconnecting (backoff) and the TLS handshake.',
    '',
  ].join('\n');
}

main().then(
  (code) => {
    cleanupSync();
    process.exit(code);
  },
  (err: unknown) => {
    console.error(err);
    cleanupSync();
    process.exit(1);
  },
);
