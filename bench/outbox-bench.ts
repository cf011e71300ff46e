// Outbox benchmark: durable ingest (group-committed appends) and drain (read + ack) of
// the SQLite outbox on a file, for synchronous FULL and NORMAL and two commit windows.
// Run: npm run bench:outbox -- [--messages 200000] [--payload 64]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { systemClock } from '../src/core/clock.js';
import { openDatabase } from '../src/store/database.js';
import { SqliteOutbox } from '../src/store/sqlite-outbox.js';
import { fmt } from './lib/report.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const MESSAGES = arg('messages', 200_000);
const PAYLOAD = arg('payload', 64);
const log = pino({ level: 'silent' });

/** Bytes this process handed to write(2) (wchar) and that reached the block layer (write_bytes). */
function io(): { wchar: number; device: number } {
  const text = readFileSync('/proc/self/io', 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { wchar: get('wchar'), device: get('write_bytes') };
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

interface Result {
  sync: 'full' | 'normal';
  windowMs: number;
  publishers: number;
  appendsPerSec: number;
  p50: number;
  p99: number;
  commitP50: number;
  commitP99: number;
  batch: number;
  rowBytes: number;
  wcharPerMsg: number;
  devicePerMsg: number;
  drainPerSec: number;
  drainWcharPerMsg: number;
}

async function run(sync: 'full' | 'normal', windowMs: number, publishers: number): Promise<Result> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-outbox-bench-'));
  const db = openDatabase({ dir, synchronous: sync, log });
  const commitMs: number[] = [];
  const onCommit = ({ appends, ms }: { appends: number; ms: number }) => void (appends > 0 && commitMs.push(ms));
  const outbox = new SqliteOutbox({ db, clock: systemClock, log, commitWindowMs: windowMs, onCommit });
  const payload = Buffer.alloc(PAYLOAD, 0x61);
  const latencies = new Float64Array(MESSAGES);
  let issued = 0;

  // `publishers` publishers, each with one append outstanding (a QoS 1 publisher waiting
  // for its PUBACK), each its own source so per-source numbering is exercised too.
  async function publisher(id: number): Promise<void> {
    const origin = { kind: 'mqtt' as const, id: `sensor-${id}` };
    const topic = `sensors/sensor-${id}/temp`;
    while (issued < MESSAGES) {
      const n = issued++;
      const t0 = performance.now();
      await outbox.append('cloud', { topic, payload, qos: 1, retain: false, origin });
      latencies[n] = performance.now() - t0;
    }
  }

  const io0 = io();
  const commits0 = outbox.commits;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: publishers }, (_, i) => publisher(i)));
  const ingestMs = performance.now() - t0;
  const io1 = io();
  const commitCount = outbox.commits - commits0;

  // The stored record: pages in use after a full checkpoint, per row.
  db.handle.pragma('wal_checkpoint(TRUNCATE)');
  const pageSize = db.handle.pragma('page_size', { simple: true }) as number;
  const used = (db.handle.pragma('page_count', { simple: true }) as number) - (db.handle.pragma('freelist_count', { simple: true }) as number);
  const rowBytes = (used * pageSize) / MESSAGES;

  // Drain as the forwarder does: read a window, ack it, let the ack commit.
  const io2 = io();
  const t1 = performance.now();
  let cursor = 0;
  let drained = 0;
  for (;;) {
    const rows = outbox.read('cloud', cursor, 1000);
    if (rows.length === 0) break;
    cursor = rows[rows.length - 1]!.seq;
    outbox.ack('cloud', rows.map((r) => r.seq));
    drained += rows.length;
    await outbox.flush();
  }
  const drainMs = performance.now() - t1;
  const io3 = io();
  if (drained !== MESSAGES || outbox.stats('cloud').rows !== 0) throw new Error(`drained ${drained} of ${MESSAGES}`);

  await outbox.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  latencies.sort();
  const commits = Float64Array.from(commitMs).sort();
  return {
    sync,
    windowMs,
    publishers,
    appendsPerSec: (MESSAGES / ingestMs) * 1000,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    commitP50: percentile(commits, 0.5),
    commitP99: percentile(commits, 0.99),
    batch: MESSAGES / commitCount,
    rowBytes,
    wcharPerMsg: (io1.wchar - io0.wchar) / MESSAGES,
    devicePerMsg: (io1.device - io0.device) / MESSAGES,
    drainPerSec: (drained / drainMs) * 1000,
    drainWcharPerMsg: (io3.wchar - io2.wchar) / drained,
  };
}

const RUNS: Array<[sync: 'full' | 'normal', windowMs: number, publishers: number]> = [
  ['full', 0, 100],
  ['full', 2, 100],
  ['full', 2, 1000],
  ['normal', 0, 100],
  ['normal', 2, 100],
  ['normal', 2, 1000],
];
const results: Result[] = [];
for (const [sync, windowMs, publishers] of RUNS) {
  process.stderr.write(`synchronous=${sync} commit_window=${windowMs}ms publishers=${publishers} …\n`);
  results.push(await run(sync, windowMs, publishers));
}

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`\nOutbox: ${fmt(MESSAGES)} messages of ${PAYLOAD} B per run; each publisher has one append outstanding (a QoS 1 publisher awaiting PUBACK)`);
console.log(`${os.cpus().length} × ${cpu}, ${os.platform()} ${os.release()}, Node ${process.version}, files in ${os.tmpdir()}\n`);
console.log('| synchronous | window | publishers | appends/s | append latency p50 / p99 (ms) | commit p50 / p99 (ms) | msgs per commit | stored row (B) | written/msg ingest (B) | to device/msg (B) | drain read+ack msgs/s | written/msg drain (B) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.sync.toUpperCase()} | ${r.windowMs} ms | ${r.publishers} | ${fmt(r.appendsPerSec)} | ${fmt(r.p50)} / ${fmt(r.p99)} | ${fmt(r.commitP50)} / ${fmt(r.commitP99)} | ${fmt(r.batch)} | ${fmt(r.rowBytes)} | ` +
      `${fmt(r.wcharPerMsg)} | ${fmt(r.devicePerMsg)} | ${fmt(r.drainPerSec)} | ${fmt(r.drainWcharPerMsg)} |`,
  );
}
console.log(
  '\nwritten/msg = bytes passed to write(2) (/proc/self/io wchar: WAL frames, checkpoints into the db file); ' +
    'to device = write_bytes (block layer; with NORMAL much of it is written back after the run). ' +
    'stored row = pages in use after a checkpoint / rows (record, index entry, page slack). ' +
    'append latency = append() to resolve (what a publisher waits for its PUBACK); commit = the transaction incl. fsync.',
);
