// Field-life soak: the whole-gateway scenario (test/system/lib/scenario.ts) at full size for
// N minutes, with faults on a bounded rotation, printing the figures of issue 9:
//   RSS over time, CPU at ~1,000 msg/s bridged, bytes written to the SQLite files per buffered
//   message, event-loop lag, and the lost / duplicate / order table per kind of source.
// Run: npm run soak -- [--minutes 30] [--mqtt 100] [--sensors 1000] [--rate 1000] [--inflight 100]
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { executableNodeWords } from '../bench/lib/bridge-procs.js';
import { totalsByKind, totalsTable } from '../test/system/lib/checker.js';
import { cpuTicksOf } from '../test/helpers/outpost-process.js';
import { WholeGateway } from '../test/system/lib/scenario.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    mqtt: { type: 'string', default: '100' },
    sensors: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '1000' },
    'commit-window': { type: 'string' },
    'commit-delay': { type: 'string' },
    inflight: { type: 'string', default: '100' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('Usage: npm run soak -- [--minutes 30] [--mqtt 100] [--sensors 1000] [--rate 1000 (msg/s over all MQTT clients and sensors)] [--commit-window 2ms] [--commit-delay 100ms] [--inflight 100 (the bridge window)]');
  process.exit(0);
}
const minutes = Number(values.minutes);
const mqttClients = Number(values.mqtt);
const inflight = Number(values.inflight);
const snSensors = Number(values.sensors);
const totalRate = Number(values.rate);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

const MAX_CRASHES = 20;
const MAX_FLAPS = 100;

function procIo(pid: number): { writeBytes: number; wchar: number } {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const get = (k: string): number => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { writeBytes: get('write_bytes'), wchar: get('wchar') };
}

/** Bytes per outbox row as SQLite stores it (cells, their headers and pointers, in the table's leaf pages). */
function storedRowBytes(file: string): number {
  const db = new Database(file);
  try {
    const r = db.prepare("SELECT sum(pgsize - unused) AS used, sum(ncell) AS cells FROM dbstat WHERE name = 'outbox' AND pagetype = 'leaf'").get() as { used: number; cells: number };
    return r.used / Math.max(1, r.cells);
  } finally {
    db.close();
  }
}

/**
 * RSS of a bare node (an idle timer) started the way the gateway's executable starts node:
 * the environment and flags of dist/src/main.js's shebang line. The RSS target is on top of it.
 */
async function bareNodeRssKiB(): Promise<number> {
  const [env, ...args] = executableNodeWords(fileURLToPath(new URL('..', import.meta.url)));
  const child = spawn(env!, [...args, '-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
  await sleep(2500);
  const kib = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? NaN);
  child.kill();
  return kib;
}

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name + ' ') || line.startsWith(name + '{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function main(): Promise<void> {
  const sources = mqttClients + snSensors;
  const scenario = new WholeGateway({
    mqttClients,
    snSensors,
    ratePerSource: totalRate / sources,
    serialRate: 5,
    inflight,
    keepaliveSec: 5,
    built: true,
    ...(values['commit-window'] !== undefined ? { commitWindow: values['commit-window'] } : {}),
    ...(values['commit-delay'] !== undefined ? { commitDelay: values['commit-delay'] } : {}),
  });
  const deadline = Date.now() + minutes * 60_000;
  const rss: { t: number; kib: number }[] = [];
  /** p99 of each 5 s scrape interval, ms. */
  const lag: number[] = [];
  /** The longest single delays, each with what the soak was doing in the 5 s it fell in. */
  const longest: { ms: number; during: { label: string } }[] = [];
  let phase = { label: 'start-up' };
  const noteLongest = (ms: number): void => {
    if (!(ms > 0)) return;
    longest.push({ ms, during: phase });
    longest.sort((a, b) => b.ms - a.ms);
    longest.length = Math.min(longest.length, 5);
  };
  const faults: Record<string, number> = {};
  const count = (k: string): void => void (faults[k] = (faults[k] ?? 0) + 1);
  let sampler: NodeJS.Timeout | undefined;
  try {
    log(`soak: ${minutes} min, ${mqttClients} MQTT clients, ${snSensors} MQTT-SN sensors, ${totalRate} msg/s, 3 serial devices; load average ${os.loadavg()[0]!.toFixed(2)}`);
    await scenario.prepare();
    await scenario.startOutpost();
    const t0 = Date.now();
    sampler = setInterval(() => {
      const o = scenario.outpost;
      if (o?.running) rss.push({ t: (Date.now() - t0) / 60_000, kib: o.rssKiB() });
      void scenario.metrics().then((m) => {
        lag.push(metric(m, 'outpost_event_loop_lag_p99_seconds') * 1000);
        noteLongest(metric(m, 'outpost_event_loop_lag_max_seconds') * 1000);
      }, () => undefined);
    }, 5000);

    // Steady state: CPU at the bridged rate.
    await sleep(20_000);
    phase = { label: 'steady' };
    const steadySecs = Math.min(60, Math.max(15, minutes * 6));
    const o1 = scenario.outpost!;
    const c0 = o1.cpuTicks();
    // The cloud Mosquitto, measured over the same seconds: a peer on the same busy host
    // (it takes the same messages over TLS and acknowledges them), so a reader can tell a
    // slow host from a slower gateway.
    const cloudPid = scenario.cloud.pid;
    const k0 = cloudPid === undefined ? NaN : cpuTicksOf(cloudPid);
    const m0 = scenario.observer.messages.length;
    const w0 = procIo(o1.pid).writeBytes;
    await sleep(steadySecs * 1000);
    const cpuPct = ((o1.cpuTicks() - c0) / 100 / steadySecs) * 100;
    const cloudPct = cloudPid === undefined ? NaN : ((cpuTicksOf(cloudPid) - k0) / 100 / steadySecs) * 100;
    /** Bytes written per second in the steady state (messages in and out within moments). */
    const steadyWrites = (procIo(o1.pid).writeBytes - w0) / steadySecs;
    const bridgedRate = (scenario.observer.messages.length - m0) / steadySecs;
    log(`steady: ${bridgedRate.toFixed(0)} msg/s at the cloud, outpost CPU ${cpuPct.toFixed(1)}% of one core, the cloud Mosquitto ${cloudPct.toFixed(1)}%`);

    // Uplink down: everything buffers; bytes written per buffered message.
    phase = { label: 'outage' };
    scenario.proxy.refuse();
    scenario.proxy.drop();
    await sleep(2000);
    const outageSecs = Math.min(60, Math.max(15, minutes * 4));
    const before = { io: procIo(o1.pid), m: await scenario.metrics() };
    await sleep(outageSecs * 1000);
    const after = { io: procIo(o1.pid), m: await scenario.metrics() };
    const rows = metric(after.m, 'outpost_outbox_rows') - metric(before.m, 'outpost_outbox_rows');
    const recordBytes = (metric(after.m, 'outpost_outbox_bytes') - metric(before.m, 'outpost_outbox_bytes')) / Math.max(1, rows);
    const written = (after.io.writeBytes - before.io.writeBytes) / Math.max(1, rows);
    // A kill -9 while the backlog is there (one of the crashes), to weigh its rows as SQLite stores them.
    let rowBytes = NaN;
    await scenario.crashAndRestart(() => void (rowBytes = storedRowBytes(scenario.databaseFile)));
    count('crash');
    log(
      `outage ${outageSecs} s: ${rows} messages buffered, ${written.toFixed(0)} B written to disk per message; ` +
        `stored ${rowBytes.toFixed(0)} B per row in the outbox table (payload+topic ${recordBytes.toFixed(0)} B)`,
    );
    phase = { label: 'drain after the outage (and the restart before it)' };
    scenario.proxy.resume();

    // The drain after the outage: the bytes its deletes (and the checkpoint once the outbox is
    // nearly empty again) write, above the steady rate of the traffic that goes on meanwhile.
    const o2 = scenario.outpost!;
    const d0 = { io: procIo(o2.pid).writeBytes, t: Date.now() };
    const drainDeadline = Date.now() + 120_000;
    while (Date.now() < drainDeadline && metric(await scenario.metrics(), 'outpost_outbox_rows') > Math.max(2000, rows / 50)) await sleep(500);
    await sleep(10_000);
    const drainSecs = (Date.now() - d0.t) / 1000;
    const drained = (procIo(o2.pid).writeBytes - d0.io - steadyWrites * drainSecs) / Math.max(1, rows);
    log(`drain: ${drainSecs.toFixed(0)} s to a nearly empty outbox (+10 s), ${drained.toFixed(0)} B written per buffered message above the steady ${(steadyWrites / 1024).toFixed(0)} KiB/s`);

    // Faults until the deadline, one round every 10 s plus the time the faults take (about 14 s
    // in all): an uplink flap (drop, zombie, half-open, slow in turn; at most 100); every fifth
    // round a kill -9 (at most 20, which a 30-minute run reaches; every seventh round gave 16);
    // every sixth round one of cloud restart, pulled serial cable, sensors on new UDP ports,
    // SIGHUP reload (in turn).
    const flapKinds = ['drop', 'zombie', 'half-open', 'slow'] as const;
    const others = ['cloud-restart', 'serial-unplug', 'sensor-ports', 'reload'] as const;
    let zombieWorst = 0;
    for (let tick = 1; Date.now() < deadline - 60_000; tick++) {
      await sleep(10_000);
      const done: string[] = [];
      const round = { label: `fault round ${tick}` };
      phase = round;
      const flaps = flapKinds.reduce((a, k) => a + (faults[k] ?? 0), 0);
      if (flaps < MAX_FLAPS) {
        const f = flapKinds[tick % flapKinds.length]!;
        count(f);
        done.push(f);
        if (f === 'drop') scenario.proxy.drop();
        else if (f === 'zombie' || f === 'half-open') zombieWorst = Math.max(zombieWorst, await scenario.zombieUplink(f === 'zombie' ? 'stall' : 'half-open'));
        else {
          scenario.proxy.slow(50_000);
          await sleep(3000);
          scenario.proxy.resume();
        }
      }
      if (tick % 5 === 0 && (faults['crash'] ?? 0) < MAX_CRASHES) {
        count('crash');
        done.push('crash');
        await scenario.crashAndRestart();
      }
      if (tick % 6 === 3) {
        const f = others[Math.floor(tick / 6) % others.length]!;
        count(f);
        done.push(f);
        if (f === 'cloud-restart') await scenario.cloud.restart();
        else if (f === 'serial-unplug') await scenario.serial[tick % scenario.serial.length]!.unplugFor(2000);
        else if (f === 'sensor-ports') {
          // A tenth of the sensors come back from new UDP ports (a NAT rebinding).
          await Promise.all(scenario.sensors.filter((_, k) => k % 10 === tick % 10).map((s) => s.attach(scenario.snPort).catch(() => undefined)));
        } else {
          // The bridge is replaced mid-traffic (inflight window N ↔ N − 1).
          const r = await scenario.reload((c) => {
            const b = (c['bridges'] as Record<string, unknown>[])[0]!;
            b['inflight'] = b['inflight'] === inflight ? inflight - 1 : inflight;
          });
          if (r['msg'] !== 'config reloaded') throw new Error(`reload rejected: ${JSON.stringify(r)}`);
        }
      }
      await scenario.reattachBroken();
      round.label = `fault round ${tick}: ${done.join(', ')}`;
      phase = { label: `after fault round ${tick}: ${done.join(', ')}` };
      log(`faults ${done.join(', ')}; RSS ${(scenario.outpost!.rssKiB() / 1024).toFixed(1)} MiB`);
    }

    phase = { label: 'quiet minute and settle' };
    const { cloud: checks, local } = await scenario.settle(120_000);
    const totals = totalsByKind(checks);
    const localTotals = totalsByKind(local);
    clearInterval(sampler);
    sampler = undefined;

    console.log(`\n## Soak result (${minutes} min, ${new Date().toISOString()})\n`);
    console.log(`At the cloud:\n\n${totalsTable(totals)}\n\nAt the persistent local subscriber:\n\n${totalsTable(localTotals)}`);
    console.log(`\nfaults: ${Object.entries(faults).map(([k, v]) => `${k} ×${v}`).join(', ')}; worst zombie / half-open link detection ${zombieWorst} ms (keepalive ${scenario.size.keepaliveSec} s)`);
    const base = rss[0]?.kib ?? NaN;
    const byMinute = new Map<number, number>();
    for (const s of rss) byMinute.set(Math.floor(s.t), Math.max(byMinute.get(Math.floor(s.t)) ?? 0, s.kib));
    console.log(`\nRSS (max per minute, MiB): ${[...byMinute.entries()].map(([m, k]) => `${m}:${(k / 1024).toFixed(1)}`).join(' ')}`);
    const max = Math.max(...rss.map((s) => s.kib));
    console.log(`RSS first sample ${(base / 1024).toFixed(1)} MiB, last ${((rss.at(-1)?.kib ?? NaN) / 1024).toFixed(1)} MiB, max ${(max / 1024).toFixed(1)} MiB`);
    const bare = await bareNodeRssKiB();
    console.log(`bare node with the executable's flags: ${(bare / 1024).toFixed(1)} MiB; outpost above it: max ${((max - bare) / 1024).toFixed(1)} MiB, last ${(((rss.at(-1)?.kib ?? NaN) - bare) / 1024).toFixed(1)} MiB (target ≤ 60)`);
    const sorted = [...lag].sort((a, b) => a - b);
    console.log(`event-loop lag, p99 of each 5 s interval (ms): median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(2)}, worst interval ${sorted.at(-1)?.toFixed(2)}; longest single delay ${(longest[0]?.ms ?? NaN).toFixed(1)} ms`);
    console.log(`longest single delays (in the 5 s before a scrape, during): ${longest.map((l) => `${l.ms.toFixed(1)} ms (${l.during.label})`).join('; ')}`);
    console.log(
      `CPU at ${bridgedRate.toFixed(0)} msg/s bridged: ${cpuPct.toFixed(1)}% of one core (target ≤ 10); ` +
        `the cloud Mosquitto, same seconds, taking those messages over TLS: ${cloudPct.toFixed(1)}% (outpost ${(cpuPct / cloudPct).toFixed(1)}× it)`,
    );
    console.log(
      `disk writes per buffered message ${written.toFixed(0)} B = ${(written / rowBytes).toFixed(2)}× the stored row of ${rowBytes.toFixed(0)} B ` +
        `(${(written / recordBytes).toFixed(1)}× its payload+topic of ${recordBytes.toFixed(0)} B); ` +
        `its deletes in the drain after the outage ${drained.toFixed(0)} B more, ${((written + drained) / rowBytes).toFixed(2)}× in all; ` +
        `steady state ${(steadyWrites / Math.max(1, bridgedRate)).toFixed(0)} B per bridged message`,
    );
    const lost = [...totals, ...localTotals].reduce((a, t) => a + t.lost, 0);
    const ooo = totals.reduce((a, t) => a + t.orderViolations, 0);
    process.exitCode = lost === 0 && ooo === 0 ? 0 : 1;
    if (process.exitCode) console.log(`FAILED: ${lost} lost, ${ooo} out of order`);
  } finally {
    if (sampler) clearInterval(sampler);
    await scenario.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
