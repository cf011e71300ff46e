/**
 * Serial ingest benchmark (npm run bench:serial):
 *
 *  lines   8 socat ptys, each fed at 115200 baud line rate (11 520 B/s) with JSON lines of 4
 *          numeric fields, into an outpost child process whose bridge rule selects sensors/#
 *          (the bridge points at a closed port, so every reading is committed to the SQLite
 *          outbox and stays there). Reports readings/s published and the child's CPU %.
 *  modbus  one pty RS-485 bus at 115200 baud with the slave simulator answering 4 slaves polled
 *          flat out (poll_interval 0); reports requests/s and readings/s.
 *
 *   bench ── TCP ── socat ══ pty ══ outpost (child: serial host → broker → bridge outbox)
 *     └─ mqtt.js subscriber ◀── $SYS/outpost/serial/+/stats (every second) ──┘
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { freePort } from '../test/helpers/gateway-fixture.js';
import { memory, ModbusSlaveSim, putFloat } from '../test/helpers/modbus-slave.js';
import { PtyLab, type SocatPty } from '../test/helpers/pty.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    ports: { type: 'string', default: '8' },
    baud: { type: 'string', default: '115200' },
    slaves: { type: 'string', default: '4' },
    only: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const PORTS = Number(args.ports);
const BAUD = Number(args.baud);
const SLAVES = Number(args.slaves);
const repo = fileURLToPath(new URL('../', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TICK = 100; // Linux USER_HZ: /proc/<pid>/stat times are in 1/100 s

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14 and 15)
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Outpost {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

async function startOutpost(dir: string, serialYaml: string[], bridged: boolean): Promise<Outpost> {
  const port = await freePort();
  const closed = await freePort(); // nothing listens there: the bridge keeps everything in its outbox
  const file = join(dir, 'outpost.yaml');
  writeFileSync(
    file,
    [
      `listeners: [{ type: mqtt, host: 127.0.0.1, port: ${port} }]`,
      'log: { level: warn, format: json }',
      `store: { dir: ${JSON.stringify(join(dir, 'data'))}, synchronous: normal }`,
      ...(bridged ? ['bridges:', `  - { name: cloud, url: "mqtt://127.0.0.1:${closed}", rules: [{ pattern: "sensors/#", qos: 1 }] }`] : []),
      'serial:',
      '  stats_interval: 1s',
      ...serialYaml.map((l) => `  ${l}`),
    ].join('\n'),
  );
  // The built executable, so the node flags of its shebang apply as in production (npm run build first).
  const child = spawn('dist/src/main.js', ['run', '--config', file], { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] });
  return {
    child,
    port,
    async stop() {
      if (child.exitCode !== null || child.pid === undefined) return;
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await Promise.race([exited, sleep(10_000).then(() => child.pid && process.kill(child.pid, 'SIGKILL'))]);
    },
  };
}

/** Latest counters per device from the retained stats topics. */
async function statsWatcher(port: number): Promise<{ stats: Map<string, Record<string, number>>; end(): void }> {
  const stats = new Map<string, Record<string, number>>();
  for (let i = 0; ; i++) {
    try {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
      c.on('message', (topic, payload) => stats.set(topic.split('/')[3]!, JSON.parse(payload.toString()) as Record<string, number>));
      await c.subscribeAsync('$SYS/outpost/serial/+/stats');
      return { stats, end: () => void c.end(true) };
    } catch (err) {
      if (i > 100) throw err;
      await sleep(100);
    }
  }
}

const total = (stats: Map<string, Record<string, number>>, key: string) => [...stats.values()].reduce((a, s) => a + (s[key] ?? 0), 0);

async function measure(o: Outpost, watch: Awaited<ReturnType<typeof statsWatcher>>, key: string) {
  await sleep(2000); // warm-up (JIT, first commits)
  const t0 = Date.now();
  const cpu0 = cpuTicks(o.child.pid!);
  const r0 = total(watch.stats, key);
  const rest = { ...Object.fromEntries([...watch.stats].map(([k, v]) => [k, { ...v }])) };
  await sleep(SECONDS * 1000);
  const secs = (Date.now() - t0) / 1000;
  const cpu = ((cpuTicks(o.child.pid!) - cpu0) / TICK / secs) * 100;
  return { secs, cpu, rate: (total(watch.stats, key) - r0) / secs, rss: rssMiB(o.child.pid!), before: rest };
}

async function linesBench(): Promise<string> {
  const lab = new PtyLab();
  const dir = mkdtempSync(join(tmpdir(), 'outpost-serial-bench-'));
  const ptys: SocatPty[] = [];
  for (let i = 0; i < PORTS; i++) ptys.push(await lab.pty(`ttyBench${i}`));
  const devices = ptys.map((p, i) => `  - { id: dev${i}, port: ${p.path}, baud: ${BAUD}, driver: line-json }`);
  const o = await startOutpost(dir, ['devices:', ...devices], true);
  const watch = await statsWatcher(o.port);
  let sent = 0;
  let running = true;
  const bytesPerSec = BAUD / 10; // 8N1: 10 bits per byte on the wire
  const writers = ptys.map(async (p, i) => {
    let seq = 0;
    let budget = 0;
    let last = Date.now();
    while (running) {
      const now = Date.now();
      budget += ((now - last) / 1000) * bytesPerSec;
      last = now;
      let chunk = '';
      while (budget > 60) {
        const line = `{"seq":${seq++},"temp":${(20 + Math.sin(seq / 50)).toFixed(2)},"hum":${(40 + i).toFixed(1)},"volt":3.3${seq % 10}}\n`;
        chunk += line;
        budget -= line.length;
        sent++;
      }
      if (chunk) await p.write(chunk);
      await sleep(10);
    }
  });
  const m = await measure(o, watch, 'readings');
  const sentRate = sent; // lines written overall, for the keep-up check below
  running = false;
  await Promise.all(writers);
  await sleep(1500);
  const lines = total(watch.stats, 'frames');
  const discarded = total(watch.stats, 'discarded_bytes');
  watch.end();
  await o.stop();
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
  return [
    `### ${PORTS} ptys × ${BAUD} baud, JSON lines (4 metrics each), bridged (outbox commit per reading)`,
    '',
    '| readings/s | per port | lines sent | lines framed | bytes discarded | CPU % (one core) | RSS MiB |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    `| ${Math.round(m.rate)} | ${Math.round(m.rate / PORTS)} | ${sentRate} | ${lines} | ${discarded} | ${m.cpu.toFixed(1)} | ${m.rss.toFixed(0)} |`,
    '',
    `Line rate per port: ${Math.round(bytesPerSec)} B/s ≈ ${Math.round(bytesPerSec / 60)} lines/s ≈ ${Math.round((bytesPerSec / 60) * 4)} readings/s.`,
  ].join('\n');
}

async function modbusBench(): Promise<string> {
  const lab = new PtyLab();
  const dir = mkdtempSync(join(tmpdir(), 'outpost-modbus-bench-'));
  const bus = await lab.pty('ttyBus');
  const sim = new ModbusSlaveSim((b) => void bus.write(b).catch(() => undefined));
  bus.onReceive((b) => sim.feed(b));
  const devices: string[] = [];
  for (let id = 1; id <= SLAVES; id++) {
    const m = memory();
    putFloat(m.input, 0, 230 + id);
    m.holding[10] = id;
    sim.slaves.set(id, m);
    devices.push(`  - { id: slave${id}, port: ${bus.path}, baud: ${BAUD}, driver: modbus-rtu, options: { slave_id: ${id}, poll_interval: 0, timeout: 200ms, registers: [{ name: v, table: input, address: 0, type: float32 }, { name: n, address: 10 }] } }`);
  }
  const o = await startOutpost(dir, ['devices:', ...devices], false);
  const watch = await statsWatcher(o.port);
  await sleep(2000);
  const q0 = sim.requests.length;
  const m = await measure(o, watch, 'readings');
  const requests = (sim.requests.length - q0) / (m.secs + 2);
  const timeouts = total(watch.stats, 'timeouts');
  watch.end();
  await o.stop();
  sim.stop();
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
  return [
    `### Modbus RTU: ${SLAVES} slaves on one bus at ${BAUD} baud, polled flat out (2 register blocks per slave)`,
    '',
    '| requests/s | polls/s (all slaves) | readings/s | timeouts | collisions | CPU % | RSS MiB |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    `| ${Math.round(requests)} | ${Math.round(requests / 2)} | ${Math.round(m.rate)} | ${timeouts} | ${sim.collisions} | ${m.cpu.toFixed(1)} | ${m.rss.toFixed(0)} |`,
  ].join('\n');
}

const parts: string[] = [`## Serial ingest (${new Date().toISOString()}, ${SECONDS} s per run)`, ''];
if (args.only !== 'modbus') parts.push(await linesBench(), '');
if (args.only !== 'lines') parts.push(await modbusBench(), '');
const report = parts.join('\n');
console.log(report);
writeFileSync(join(repo, 'bench/results/serial-latest.md'), report);
process.exit(0);
