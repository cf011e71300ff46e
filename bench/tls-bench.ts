// TLS connection benchmark: outpost vs Mosquitto, both with a TLS listener on the same
// certificate (EC P-256, from the test certificate generator) and persistence on.
// For each broker, in a fresh process: N MQTT clients connect over TLS (full handshake each,
// `concurrency` at a time) and stay connected; the figures are the handshake rate
// (TLS + CONNECT/CONNACK per second) and the RSS the idle connections cost.
// Run: npm run bench:tls -- [--connections 5000] [--concurrency 50] [--rounds 2] [--brokers outpost,mosquitto]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { freePort, killAllSync, trackChild } from './lib/brokers.js';
import { testCerts } from '../test/helpers/certs.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '2' },
    brokers: { type: 'string', default: 'outpost,mosquitto' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('Usage: npm run bench:tls -- [--connections N] [--concurrency N] [--rounds N] [--brokers outpost,mosquitto]');
  process.exit(0);
}
const N = Number(values.connections);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const BROKERS = values.brokers.split(',') as ('outpost' | 'mosquitto')[];

const tmp = mkdtempSync(path.join(os.tmpdir(), 'outpost-tls-bench-'));
process.on('exit', () => {
  killAllSync();
  rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

const certs = testCerts();
const ca = readFileSync(certs.ca.crt);

interface Running {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** A 3.1.1 CONNECT (clean session, keepalive 300 s) for `clientId`. */
function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const variable = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0x01, 0x2c]);
  const body = Buffer.concat([variable, Buffer.from([id.length >> 8, id.length & 0xff]), id]);
  if (body.length > 127) throw new Error('client id too long for this bench');
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

/** Connects over TLS and resolves once CONNACK (accepted) arrived. */
function tlsConnect(port: number, clientId: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('timeout'));
    }, 20_000);
    let got = Buffer.alloc(0);
    sock.once('secureConnect', () => sock.write(connectPacket(clientId)));
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 4) return;
      clearTimeout(timer);
      sock.removeAllListeners('data');
      sock.on('data', () => undefined);
      if (got[0] === 0x20 && got[3] === 0) resolve(sock);
      else {
        sock.destroy();
        reject(new Error(`CONNACK refused: ${got.subarray(0, 4).toString('hex')}`));
      }
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function start(name: 'outpost' | 'mosquitto', gen: number): Promise<Running> {
  const port = await freePort();
  const dir = path.join(tmp, `${name}-${gen}`);
  mkdirSync(dir, { recursive: true });
  let cmd: string;
  let args: string[];
  if (name === 'mosquitto') {
    const conf = path.join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        'per_listener_settings false',
        // As root, mosquitto would switch to the mosquitto user, which cannot read the 0700 tmp dirs.
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        `listener ${port} 127.0.0.1`,
        `certfile ${certs.server.crt}`,
        `keyfile ${certs.server.key}`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${dir}/`,
        'max_connections -1',
        'log_dest stderr',
        'log_type error',
        '',
      ].join('\n'),
    );
    cmd = '/usr/sbin/mosquitto';
    args = ['-c', conf];
  } else {
    const conf = path.join(dir, 'outpost.yaml');
    writeFileSync(
      conf,
      [
        'listeners:',
        `  - { type: mqtts, host: 127.0.0.1, port: ${port}, cert: ${JSON.stringify(certs.server.crt)}, key: ${JSON.stringify(certs.server.key)} }`,
        'store:',
        `  dir: ${JSON.stringify(path.join(dir, 'store'))}`,
        'log:',
        '  level: warn',
        'metrics:',
        '  enabled: false',
        '',
      ].join('\n'),
    );
    cmd = path.join(repoRoot, 'dist/src/main.js');
    args = ['run', '--config', conf];
  }
  const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  trackChild(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-2000)));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${stderr}`);
    try {
      const s = await tlsConnect(port, `ready-${gen}`);
      s.destroy();
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${name} not ready: ${(e as Error).message} ${stderr}`);
      await sleep(100);
    }
  }
  return {
    pid: child.pid!,
    port,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

interface Result {
  broker: string;
  rate: number;
  kibPerConn: number;
  rssAfterMiB: number;
  failed: number;
}

async function measure(name: 'outpost' | 'mosquitto', gen: number): Promise<Result> {
  const b = await start(name, gen);
  const sockets: tls.TLSSocket[] = [];
  let failed = 0;
  try {
    await sleep(500);
    const before = rssKiB(b.pid);
    const t0 = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        try {
          sockets.push(await tlsConnect(b.port, `tls-${gen}-${i}`));
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const secs = (performance.now() - t0) / 1000;
    await sleep(2000);
    const after = rssKiB(b.pid);
    return { broker: name, rate: sockets.length / secs, kibPerConn: (after - before) / Math.max(1, sockets.length), rssAfterMiB: after / 1024, failed };
  } finally {
    for (let i = 0; i < sockets.length; i += 500) {
      for (const s of sockets.slice(i, i + 500)) s.destroy();
      await sleep(50);
    }
    await b.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  console.log(`TLS connections: ${N} per broker, ${CONCURRENCY} handshakes in flight, ${ROUNDS} round(s); EC P-256 server certificate`);
  console.log(`load average at start: ${os.loadavg()[0]!.toFixed(2)} (the machine has ${os.cpus().length} CPUs; the client runs on the same machine)`);
  const all: Result[] = [];
  let gen = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? BROKERS : [...BROKERS].reverse();
    for (const name of order) {
      const res = await measure(name, ++gen);
      all.push(res);
      console.log(
        `  round ${r + 1} ${name}: ${res.rate.toFixed(0)} handshakes/s, ${res.kibPerConn.toFixed(2)} KiB/conn, RSS ${res.rssAfterMiB.toFixed(1)} MiB, failed ${res.failed}`,
      );
    }
  }
  const rows = BROKERS.map((name) => {
    const rs = all.filter((x) => x.broker === name);
    return { name, rate: median(rs.map((x) => x.rate)), kib: median(rs.map((x) => x.kibPerConn)), rss: median(rs.map((x) => x.rssAfterMiB)), failed: rs.reduce((a, x) => a + x.failed, 0) };
  });
  const ref = rows.find((x) => x.name === 'mosquitto');
  console.log('\n| broker | handshakes/s | KiB per TLS connection | RSS with all connected MiB | failed | rate vs mosquitto | memory vs mosquitto |');
  console.log('|---|---|---|---|---|---|---|');
  for (const x of rows) {
    const rr = ref ? `${(x.rate / ref.rate).toFixed(2)}×` : '–';
    const mr = ref ? `${(x.kib / ref.kib).toFixed(2)}×` : '–';
    console.log(`| ${x.name} | ${x.rate.toFixed(0)} | ${x.kib.toFixed(2)} | ${x.rss.toFixed(1)} | ${x.failed} | ${rr} | ${mr} |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
