// MQTT-SN gateway benchmark: simulated sensors over UDP against an outpost process whose
// bridge rule selects their topic (so every QoS 1 PUBACK waits for the SQLite outbox commit;
// the bridge's cloud is unreachable on purpose: the outbox keeps everything).
// Run: npm run bench:mqttsn -- [--sensors 1000] [--seconds 5] [--idle 10000]; writes bench/results/mqttsn-latest.md
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { RawClient } from './lib/mqtt-client.js';
import { Sensor } from './lib/sn-sensor.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SENSORS = arg('sensors', 1000);
const SECONDS = arg('seconds', 5);
const IDLE = arg('idle', 10_000);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const PAYLOAD = Buffer.alloc(32, 0x61);

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  }));
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function startOutpost(dir: string, udp: number, tcp: number): Promise<ChildProcess> {
  const conf = path.join(dir, 'outpost.yaml');
  writeFileSync(conf, [
    `listeners: [{ type: mqtt, host: 127.0.0.1, port: ${tcp} }]`,
    `store: { dir: ${JSON.stringify(path.join(dir, 'store'))} }`,
    'log: { level: warn }',
    'bridges:',
    '  - name: cloud',
    '    url: mqtt://127.0.0.1:1',
    '    rules: [{ pattern: "sensors/#", qos: 1 }]',
    '    backoff: { base: 30s, cap: 60s }',
    'mqttsn:',
    '  hosts: [127.0.0.1]',
    `  port: ${udp}`,
    '  max_clients: 100000',
    '  advertise: { interval: 0 }',
    '  predefined_topics: { 1: sensors/bench/predefined }',
    '  rate_limit: { datagrams_per_second: 100000, burst: 100000 }',
    '',
  ].join('\n'));
  // The built executable, so the node flags of its shebang apply as in production (npm run build first).
  const child = spawn(path.join(repoRoot, 'dist/src/main.js'), ['run', '--config', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  const probe = await Sensor.open(udp, 'probe');
  for (let i = 0; i < 100; i++) {
    try {
      await probe.request({ type: 0x01, radius: 0 }, 0x02, 200);
      await probe.close();
      return child;
    } catch {
      if (child.exitCode !== null) throw new Error('outpost exited at start');
    }
  }
  throw new Error('outpost did not answer SEARCHGW');
}

async function openSensors(n: number, udp: number, prefix: string, register: boolean): Promise<Sensor[]> {
  const out: Sensor[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch = await Promise.all(Array.from({ length: Math.min(200, n - i) }, async (_, k) => {
      const s = await Sensor.open(udp, `${prefix}-${i + k}`);
      await s.connect();
      if (!register) return s;
      // Half the sensors publish on registered ids, half on the predefined one (§6.7).
      if ((i + k) % 2 === 0) await s.register(`sensors/bench/${prefix}-${i + k}`);
      else s.usePredefined(1);
      return s;
    }));
    out.push(...batch);
  }
  return out;
}

async function qos0(sensors: Sensor[], tcp: number): Promise<{ offered: number; delivered: number }> {
  const sub = await RawClient.connect({ port: tcp, clientId: 'bench-counter', protocol: 4, timeoutMs: 5000 });
  let delivered = 0;
  sub.onPublish = () => void delivered++;
  await sub.subscribe('sensors/bench/#', 0, 5000);
  let offered = 0;
  const end = Date.now() + SECONDS * 1000;
  // Open loop in rounds: every sensor sends one reading per round, then the loop yields.
  while (Date.now() < end) {
    for (const s of sensors) s.publish(PAYLOAD, 0);
    offered += sensors.length;
    await new Promise((r) => setImmediate(r));
    await sleep(1);
  }
  await sleep(1000);
  await sub.close();
  return { offered: offered / SECONDS, delivered: delivered / SECONDS };
}

async function qos1(sensors: Sensor[]): Promise<{ rate: number; p50: number; p99: number; refused: number }> {
  // Closed loop: one QoS 1 PUBLISH outstanding per sensor (§6.6), the next on PUBACK.
  const lat: number[] = [];
  let refused = 0;
  let running = true;
  for (const s of sensors) {
    s.onPuback = (ns, rc) => {
      lat.push(Number(ns) / 1e6);
      if (rc !== 0) refused++;
      if (running) s.publish(PAYLOAD, 1);
    };
  }
  const t0 = Date.now();
  for (const s of sensors) s.publish(PAYLOAD, 1);
  await sleep(SECONDS * 1000);
  running = false;
  const took = (Date.now() - t0) / 1000;
  await sleep(500);
  lat.sort((a, b) => a - b);
  return { rate: lat.length / took, p50: pct(lat, 50), p99: pct(lat, 99), refused };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-sn-bench-'));
  const udp = await freeUdpPort();
  const tcp = await freeUdpPort(); // free for TCP too in practice on an idle loopback
  const child = await startOutpost(dir, udp, tcp);
  try {
    await sleep(500);
    const rssStart = rssMiB(child.pid!);
    const load = os.loadavg()[0]!;
    // Idle sensors first, on a fresh process: later phases grow the heap, and a GC during
    // the measurement would hide (or invert) what 10,000 sessions cost.
    const idle = await openSensors(IDLE, udp, 'idle', false);
    await sleep(1000);
    const rssIdle = rssMiB(child.pid!);
    await Promise.all(idle.map((s) => s.close()));
    const sensors = await openSensors(SENSORS, udp, 's', true);
    const rssSensors = rssMiB(child.pid!);
    // QoS 1 first: the QoS 0 phase offers more than the gateway takes, and its backlog
    // (socket buffer, outbox) would still be draining during a later phase.
    const q1 = await qos1(sensors);
    await sleep(1000);
    const q0 = await qos0(sensors, tcp);
    const rssAfter = rssMiB(child.pid!);
    await Promise.all(sensors.map((s) => s.close()));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
    // Evidence that the PUBACKs waited for real commits: the rows are in the outbox file.
    const db = new Database(path.join(dir, 'store', 'outpost.db'), { readonly: true });
    const rows = (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
    db.close();
    const md = [
      '# outpost MQTT-SN gateway benchmark',
      '',
      `- ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}; gateway and sensors on one machine (loopback UDP); 1-min load average ${load.toFixed(2)} at start`,
      `- ${SENSORS} sensors (half registered topic ids, half a predefined id), ${SECONDS} s per phase, 32-byte payloads, topic selected by a bridge rule (SQLite outbox, synchronous=full)`,
      '',
      '| measure | value |',
      '| --- | --- |',
      `| QoS 0 offered | ${Math.round(q0.offered).toLocaleString('en-US')} msg/s |`,
      `| QoS 0 delivered to a local MQTT subscriber | ${Math.round(q0.delivered).toLocaleString('en-US')} msg/s |`,
      `| QoS 1 (PUBACK after outbox commit), one in flight per sensor | ${Math.round(q1.rate).toLocaleString('en-US')} msg/s |`,
      `| PUBACK latency p50 / p99 | ${q1.p50.toFixed(2)} ms / ${q1.p99.toFixed(2)} ms |`,
      `| PUBACK refused | ${q1.refused} |`,
      `| rows in the bridge outbox at the end (QoS 1 and QoS 0 runs) | ${rows.toLocaleString('en-US')} |`,
      `| ${IDLE.toLocaleString('en-US')} connected sensors on a fresh gateway | +${(rssIdle - rssStart).toFixed(1)} MiB RSS (${rssStart.toFixed(1)} → ${rssIdle.toFixed(1)}) |`,
      `| gateway RSS with ${SENSORS} more sensors / after the load | ${rssSensors.toFixed(1)} / ${rssAfter.toFixed(1)} MiB |`,
      '',
    ].join('\n');
    const out = path.join(repoRoot, 'bench/results/mqttsn-latest.md');
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, md);
    console.log(md);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error('bench failed:', e instanceof Error ? e.message : e);
  process.exit(1);
});
