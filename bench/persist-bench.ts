// Persistence benchmark (issue 5): what write-through persistence of retained messages
// and persistent sessions costs, outpost vs Mosquitto (`persistence true`) in the same run.
//
//   retained-10k   10,000 retained topics updated in a loop, QoS 1, every PUBACK awaited
//                  (window of 100 unacknowledged), msgs/s and bytes written per message
//   offline-q1     QoS 1 to one offline persistent subscriber (clean session 0), msgs/s
//                  until the last PUBACK, then the subscriber reconnects and drains its queue
//
// Mosquitto with `persistence true` snapshots its state to disk every autosave_interval
// (default 30 min) and at exit; a kill -9 loses what came since. outpost writes every
// change through in group commits before acknowledging, so the figures below compare
// a durable acknowledgement with one that is not.
//
// `outpost (persistence off)` is the same broker with store.persist_sessions and
// store.persist_retained false: the difference to it is what persistence costs.
//
// Run: npm run bench:persist -- [--messages 50000] [--queued 20000] [--window 100] [--payload 64]
//      [--outpost-cmd "node --import tsx src/main.ts run --config {config}"]
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Child, killChildrenSync } from './lib/bridge-procs.js';
import { freePort } from './lib/brokers.js';
import { RawClient, withTimeout } from './lib/mqtt-client.js';
import { fmt } from './lib/report.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const MESSAGES = Number(arg('messages', '50000'));
const QUEUED = Number(arg('queued', '20000'));
const WINDOW = Number(arg('window', '100'));
const PAYLOAD = Number(arg('payload', '64'));
const TOPICS = 10_000;
const OUTPOST_CMD = arg('outpost-cmd', 'node --import tsx src/main.ts run --config {config}');
/** Every phase is bounded in time. */
const PHASE_MS = 180_000;

let tmpRoot: string | undefined;
function cleanupSync(): void {
  killChildrenSync();
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
  tmpRoot = undefined;
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanupSync();
    process.exit(130);
  });
}

type Target = 'outpost (full)' | 'outpost (normal)' | 'outpost (persistence off)' | 'mosquitto';

async function start(target: Target, dir: string): Promise<Child> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let child;
  if (target === 'mosquitto') {
    const conf = path.join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${dir}/`,
        'max_queued_messages 0', // no limit, like outpost's below
        'log_dest none',
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        '',
      ].join('\n'),
    );
    child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  } else {
    const config = path.join(dir, 'outpost.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        listeners: [{ type: 'mqtt', host: '127.0.0.1', port }],
        log: { level: 'warn', format: 'json' },
        metrics: { enabled: false },
        broker: { max_queued_messages: 10_000_000, max_queued_bytes: '4GiB' },
        store: {
          dir: path.join(dir, 'state'),
          synchronous: target === 'outpost (full)' ? 'full' : 'normal',
          // The baseline: the same broker keeping sessions and retained messages in memory only.
          ...(target === 'outpost (persistence off)' ? { persist_sessions: false, persist_retained: false } : {}),
        },
      }),
    );
    const [cmd, ...args] = OUTPOST_CMD.split(/\s+/).map((w) => w.replaceAll('{config}', config));
    child = spawn(cmd === 'node' ? process.execPath : cmd!, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  const c = new Child(target, port, child);
  await c.ready();
  return c;
}

/**
 * Publishes `count` QoS 1 messages with at most `window` unacknowledged; `topicOf(i)`
 * names the topic of message i. Resolves with the elapsed ms when the last PUBACK is in.
 */
async function publishLoop(port: number, count: number, topicOf: (i: number) => string, retain: boolean): Promise<number> {
  const c = await RawClient.connect({ port, clientId: `persist-bench-pub-${process.pid}`, protocol: 4, timeoutMs: 5000 });
  // Each message differs (its number in the first bytes): SQLite skips rewriting a row
  // with identical content, and a real sensor's value changes.
  const base = Buffer.alloc(PAYLOAD, 0x61);
  let sent = 0;
  let acked = 0;
  const t0 = performance.now();
  const done = new Promise<void>((resolve) => {
    const next = () => {
      const i = sent++;
      const payload = Buffer.from(base);
      payload.write(`${i}:${Date.now()}`, 0, 'latin1');
      c.send({ cmd: 'publish', topic: topicOf(i), payload, qos: 1, retain, dup: false, messageId: (i % 65535) + 1 });
    };
    c.onPuback = () => {
      acked++;
      if (acked === count) return resolve();
      if (sent < count) next();
    };
    for (let w = 0; w < Math.min(WINDOW, count); w++) next();
  });
  await withTimeout(done, PHASE_MS, `publishing ${count} messages (${acked} acknowledged)`);
  const ms = performance.now() - t0;
  await c.close();
  return ms;
}

interface Row {
  target: Target;
  retainedPerSec: number;
  retainedBytesPerMsg: number;
  retainedSeen: number;
  queuePerSec: number;
  queueBytesPerMsg: number;
  drainPerSec: number;
  drained: number;
}

async function retainedPhase(b: Child, row: Row): Promise<void> {
  // One pass first so every topic exists: the measured loop replaces retained messages.
  await publishLoop(b.port, TOPICS, (i) => `bench/r/${i}`, true);
  const w0 = b.writeBytes();
  const ms = await publishLoop(b.port, MESSAGES, (i) => `bench/r/${i % TOPICS}`, true);
  row.retainedPerSec = (MESSAGES / ms) * 1000;
  row.retainedBytesPerMsg = (b.writeBytes() - w0) / MESSAGES;
  // Sanity: all 10,000 retained topics are there.
  const reader = await RawClient.connect({ port: b.port, clientId: `persist-bench-reader-${process.pid}`, protocol: 4, timeoutMs: 5000 });
  let seen = 0;
  reader.onPublish = () => void seen++;
  await reader.subscribe('bench/r/#', 0, 10_000);
  const deadline = Date.now() + 20_000;
  while (seen < TOPICS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  row.retainedSeen = seen;
  await reader.close();
}

async function offlinePhase(b: Child, row: Row): Promise<void> {
  const id = `persist-bench-sub-${process.pid}`;
  const sub = await RawClient.connect({ port: b.port, clientId: id, protocol: 4, clean: false, timeoutMs: 5000 });
  await sub.subscribe('bench/q/#', 1, 5000);
  await sub.close();
  const w0 = b.writeBytes();
  const ms = await publishLoop(b.port, QUEUED, () => 'bench/q/x', false);
  row.queuePerSec = (QUEUED / ms) * 1000;
  row.queueBytesPerMsg = (b.writeBytes() - w0) / QUEUED;
  // Back online: the queue drains, each message acknowledged.
  let got = 0;
  const t0 = performance.now();
  let back: RawClient | undefined;
  const early: Buffer[] = [];
  const onPublish = (_buf: Buffer, _s: number, _e: number, qos: number, pid: number) => {
    got++;
    if (qos === 0) return;
    const ack = Buffer.from([0x40, 0x02, pid >> 8, pid & 0xff]);
    if (back === undefined) early.push(ack);
    else back.write(ack);
  };
  back = await RawClient.connect({ port: b.port, clientId: id, protocol: 4, clean: false, timeoutMs: 5000, onPublish });
  for (const a of early) back.write(a);
  const deadline = Date.now() + PHASE_MS;
  while (got < QUEUED && Date.now() < deadline && !back.closed) await new Promise((r) => setTimeout(r, 5));
  row.drainPerSec = (got / (performance.now() - t0)) * 1000;
  row.drained = got;
  await back.close();
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim();
  } catch (e) {
    return ((e as { stdout?: string }).stdout ?? '').split('\n')[0]!.trim() || 'unknown';
  }
}

async function main(): Promise<void> {
  tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'outpost-persist-bench-'));
  const targets: Target[] = ['outpost (full)', 'outpost (normal)', 'outpost (persistence off)', 'mosquitto'];
  const rows: Row[] = [];
  for (const target of targets) {
    const row: Row = { target, retainedPerSec: NaN, retainedBytesPerMsg: NaN, retainedSeen: 0, queuePerSec: NaN, queueBytesPerMsg: NaN, drainPerSec: NaN, drained: 0 };
    const dir = path.join(tmpRoot, target.replace(/\W+/g, '-'));
    let b: Child | undefined;
    try {
      b = await start(target, dir);
      process.stderr.write(`${target}: retained-10k…\n`);
      await retainedPhase(b, row);
      process.stderr.write(`${target}: offline-q1…\n`);
      await offlinePhase(b, row);
    } catch (e) {
      process.stderr.write(`${target}: ${(e as Error).message}\n${b?.output.slice(-500) ?? ''}\n`);
    } finally {
      await b?.stop();
    }
    rows.push(row);
  }

  const mosq = rows.find((r) => r.target === 'mosquitto')!;
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  console.log(`\n## Persistence: outpost (write-through, group commit) vs Mosquitto (persistence true, snapshots)\n`);
  console.log(`- ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, ${version('mosquitto', ['-h'])}`);
  console.log(`- retained-10k: ${TOPICS.toLocaleString('en-US')} retained topics, ${MESSAGES.toLocaleString('en-US')} QoS 1 updates in a loop, ${PAYLOAD} B payload, window ${WINDOW}`);
  console.log(`- offline-q1: ${QUEUED.toLocaleString('en-US')} QoS 1 messages to one offline clean-session-0 subscriber, window ${WINDOW}; then it reconnects and drains`);
  console.log(`- bytes written: /proc/<pid>/io write_bytes of the broker during the phase, per message (Mosquitto writes its snapshot later, at autosave or exit)\n`);
  console.log(line(['broker', 'retained msgs/s', 'retained B written/msg', 'retained seen', 'offline-q1 msgs/s', 'queued B written/msg', 'drain msgs/s', 'drained']));
  console.log(line(Array(8).fill('---')));
  for (const r of rows) {
    console.log(
      line([
        r.target,
        fmt(r.retainedPerSec),
        fmt(r.retainedBytesPerMsg),
        String(r.retainedSeen),
        fmt(r.queuePerSec),
        fmt(r.queueBytesPerMsg),
        fmt(r.drainPerSec),
        String(r.drained),
      ]),
    );
  }
  console.log('');
  console.log(line(['ratio to mosquitto', 'retained msgs/s', 'offline-q1 msgs/s', 'drain msgs/s']));
  console.log(line(Array(4).fill('---')));
  for (const r of rows.filter((x) => x !== mosq)) {
    console.log(line([r.target, fmt(r.retainedPerSec / mosq.retainedPerSec), fmt(r.queuePerSec / mosq.queuePerSec), fmt(r.drainPerSec / mosq.drainPerSec)]));
  }
}

main().then(
  () => {
    cleanupSync();
    process.exit(0);
  },
  (e: unknown) => {
    console.error(e);
    cleanupSync();
    process.exit(1);
  },
);
