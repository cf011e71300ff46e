// Paced bridge benchmark: CPU of the gateway process at a steady publish rate with the cloud
// up (issue 9's "CPU at 1,000 msg/s bridged"), against Mosquitto's own bridge under the
// same load in the same run, alternated so that machine noise hits both alike.
// Run: npm run build && npm run bench:paced -- --help
//
//   N MQTT.js clients (QoS 1, rate/N msg/s each) ──▶ outpost ───────────mTLS──▶ cloud mosquitto ──▶ counter
//   N MQTT.js clients (QoS 1, rate/N msg/s each) ──▶ edge mosquitto (bridge) ──mTLS──▶ cloud mosquitto ──▶ counter
//   N MQTT.js clients (QoS 1, rate/N msg/s each) ──▶ floor-bridge.ts ─────mTLS──▶ cloud mosquitto ──▶ counter
//
// The floor is the least a Node.js process does to carry the same load through the same
// packages (mqtt-packet, better-sqlite3, node:tls), started with the executable's node flags:
// what outpost spends above it is outpost's own work, what it spends is the runtime's.
//
// Not the same work: outpost commits every message to its SQLite outbox (fsync per group
// commit) before the PUBACK and deletes it once the cloud acknowledged it; Mosquitto keeps
// its bridge queue in RAM (persistence false, as configured by bridge-procs.ts).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { testCerts } from '../test/helpers/certs.js';
import { Mosquitto } from '../test/helpers/mosquitto.js';
import { Child, CpuMeter, executableNodeWords, killChildrenSync, startEdgeMosquitto, startOutpost, type TlsFiles } from './lib/bridge-procs.js';
import { wholeNumberOpt } from './lib/args.js';
import { freePort } from './lib/brokers.js';
import { median } from './lib/report.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `Usage: npm run bench:paced -- [options]

  --rate N       messages per second over all clients (default 1000)
  --clients N    MQTT clients, QoS 1 (default 100)
  --seconds N    measured seconds per run, after 10 s of warm-up (default 30)
  --rounds N     outpost / mosquitto pairs, alternated (default 2)
  --out FILE     markdown report (default bench/results/paced-latest.md)
  --no-floor     skip the floor (floor-bridge.ts) in each round
  --outpost-cmd CMD  command for the outpost side; {config} is replaced
                 (default: dist/src/main.js run --config {config})
  -h, --help
`;

const { values } = parseArgs({
  strict: true,
  options: {
    rate: { type: 'string' },
    clients: { type: 'string' },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    out: { type: 'string' },
    'outpost-cmd': { type: 'string' },
    'no-floor': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});

interface Row {
  system: string;
  published: number;
  arrived: number;
  cpu: number;
}

const log = (line: string) => console.log(`[paced-bench] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Publishers at a steady rate: each client sends one 64-byte QoS 1 message every clients/rate seconds, staggered. */
async function paced(port: number, clients: number, rate: number): Promise<{ sent(): number; stop(): Promise<void> }> {
  const list: MqttClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  let sent = 0;
  const payload = Buffer.alloc(64, 0x41);
  for (let i = 0; i < clients; i++) {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: `paced-${process.pid}-${i}`, protocolVersion: 4, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
    });
    list.push(c);
  }
  const every = (clients / rate) * 1000;
  list.forEach((c, i) => {
    setTimeout(() => {
      timers.push(
        setInterval(() => {
          sent++;
          c.publish(`sensors/p${i}`, payload, { qos: 1 });
        }, every),
      );
    }, (every * i) / clients);
  });
  return {
    sent: () => sent,
    stop: async () => {
      for (const t of timers) clearInterval(t);
      await Promise.all(list.map((c) => c.endAsync()));
    },
  };
}

async function measure(system: string, child: Child, cloud: Mosquitto, clients: number, rate: number, seconds: number): Promise<Row> {
  await child.ready();
  let arrived = 0;
  const counter = mqtt.connect(`mqtt://127.0.0.1:${cloud.plainPort}`, { clientId: `paced-counter-${process.pid}`, reconnectPeriod: 0 });
  await new Promise<void>((resolve) => counter.once('connect', () => resolve()));
  await counter.subscribeAsync('sites/17/sensors/#', { qos: 0 });
  counter.on('message', () => arrived++);
  const load = await paced(child.port, clients, rate);
  await sleep(10_000); // warm-up: the bridge connects, the JIT settles
  const s0 = load.sent();
  const a0 = arrived;
  const cpu = new CpuMeter(child);
  await sleep(seconds * 1000);
  const row = { system, published: (load.sent() - s0) / seconds, arrived: (arrived - a0) / seconds, cpu: cpu.percent() };
  await load.stop();
  await counter.endAsync();
  log(`${system}: ${row.published.toFixed(0)} msg/s published, ${row.arrived.toFixed(0)} msg/s at the cloud, CPU ${row.cpu.toFixed(1)}% of one core`);
  return row;
}

async function main(): Promise<number> {
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const rate = wholeNumberOpt(values.rate, 'rate', 1000);
  const clients = wholeNumberOpt(values.clients, 'clients', 100);
  const seconds = wholeNumberOpt(values.seconds, 'seconds', 30);
  const rounds = wholeNumberOpt(values.rounds, 'rounds', 2);
  const out = values.out ?? path.join(repoRoot, 'bench/results/paced-latest.md');
  const certs = testCerts();
  const tls: TlsFiles = { ca: certs.ca.crt, cert: certs.client.crt, key: certs.client.key };
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'outpost-paced-bench-'));
  const cloud = new Mosquitto({ requireCertificate: true });
  const rows: Row[] = [];
  try {
    await cloud.start();
    log(`${clients} clients, ${rate} msg/s in all, ${seconds} s measured per run, ${rounds} rounds; cloud TLS ${cloud.tlsPort}`);
    for (let r = 0; r < rounds; r++) {
      const dir = path.join(tmp, `outpost-${r}`);
      const outpost = startOutpost({ repoRoot, dir, port: await freePort(), synchronous: 'full', cloudTlsPort: cloud.tlsPort, tls, cmd: values['outpost-cmd'] ?? 'dist/src/main.js run --config {config}' });
      try {
        rows.push(await measure('outpost (synchronous: full)', outpost, cloud, clients, rate, seconds));
      } finally {
        await outpost.stop();
      }
      if (values['no-floor'] !== true) {
        const floorCmd = [...executableNodeWords(repoRoot), '--import', 'tsx', 'bench/floor-bridge.ts', '{config}'].join(' ');
        const floor = startOutpost({ repoRoot, dir: path.join(tmp, `floor-${r}`), port: await freePort(), synchronous: 'full', cloudTlsPort: cloud.tlsPort, tls, cmd: floorCmd });
        try {
          rows.push(await measure('floor (node, same packages, no broker)', floor, cloud, clients, rate, seconds));
        } finally {
          await floor.stop();
        }
      }
      const edge = startEdgeMosquitto({ dir: path.join(tmp, `edge-${r}`), port: await freePort(), cloudTlsPort: cloud.tlsPort, tls });
      try {
        rows.push(await measure('mosquitto bridge (RAM queue)', edge, cloud, clients, rate, seconds));
      } finally {
        await edge.stop();
      }
    }
  } finally {
    await cloud.stop();
    killChildrenSync();
    rmSync(tmp, { recursive: true, force: true });
  }
  const ours = median(rows.filter((r) => r.system.startsWith('outpost')).map((r) => r.cpu));
  const theirs = median(rows.filter((r) => r.system.startsWith('mosquitto')).map((r) => r.cpu));
  const floorRows = rows.filter((r) => r.system.startsWith('floor'));
  const floor = floorRows.length > 0 ? median(floorRows.map((r) => r.cpu)) : NaN;
  const report = [
    '# Paced bridge benchmark',
    '',
    `- ${new Date().toISOString()}; ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}`,
    `- load: ${clients} MQTT 3.1.1 clients, QoS 1, ${rate} msg/s in all (64-byte payloads), ${seconds} s measured after 10 s of warm-up; cloud: Mosquitto over mTLS, up`,
    '',
    '| system | published msg/s | at the cloud msg/s | CPU % of one core |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.system} | ${r.published.toFixed(0)} | ${r.arrived.toFixed(0)} | ${r.cpu.toFixed(1)} |`),
    '',
    `Median CPU: outpost ${ours.toFixed(1)} %, Mosquitto ${theirs.toFixed(1)} %, ratio ${(ours / theirs).toFixed(2)}×. ` +
      'outpost commits each message to SQLite before its PUBACK and deletes it after the cloud acknowledged it; Mosquitto keeps its bridge queue in RAM.',
    ...(Number.isNaN(floor)
      ? []
      : [
          '',
          `Floor (bench/floor-bridge.ts: the same packages and SQLite commits, none of a broker's work, the executable's node flags): ${floor.toFixed(1)} %; ` +
            `outpost spends ${(ours - floor).toFixed(1)} points above it (${(ours / floor).toFixed(2)}× it).`,
        ]),
    '',
  ].join('\n');
  console.log(`\n${report}`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, report);
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (e) => {
    console.error(e);
    killChildrenSync();
    process.exitCode = 1;
  },
);
