// Broker benchmark: outpost vs Aedes vs Mosquitto, interleaved rounds.
// Run: npm run bench -- --help
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions, USAGE, type BenchOptions } from './lib/args.js';
import { BrokerProcess, killAllSync, type BrokerConfig, type BrokerName } from './lib/brokers.js';
import { withTimeout } from './lib/mqtt-client.js';
import { detailTable, progressLine, summaryTable, type Record } from './lib/report.js';
import type { Scenario, ScenarioContext } from './lib/scenarios/common.js';
import { idleScenario, latencyScenario } from './lib/scenarios/latency-idle.js';
import { fanInQos0, fanInQos1, fanOutQos0 } from './lib/scenarios/throughput.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SCENARIOS: Scenario[] = [fanInQos0, fanInQos1, fanOutQos0, latencyScenario, idleScenario];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Slot {
  proc: BrokerProcess | null;
  warm: boolean;
}

let tmpRoot: string | null = null;
function cleanupSync(): void {
  killAllSync();
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
  tmpRoot = null;
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping brokers`);
    cleanupSync();
    process.exit(130);
  });
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const out = (e as { stdout?: string }).stdout ?? '';
    return out.trim() || 'unknown';
  }
}

const loadStart = os.loadavg()[0]!;

function environment(opts: BenchOptions): string {
  const aedes = JSON.parse(readFileSync(path.join(repoRoot, 'node_modules/aedes/package.json'), 'utf8')) as {
    version: string;
  };
  const mosq = tryRun(opts.mosquittoBin, ['-h']).split('\n')[0] ?? 'unknown';
  const s = opts.scenario;
  return [
    `- date: ${new Date().toISOString()}, commit ${tryRun('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'])}`,
    `- machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, ${mosq}, aedes ${aedes.version}`,
    `- 1-min load average: ${loadStart.toFixed(2)} at start, ${os.loadavg()[0]!.toFixed(2)} at end ` +
      `(the bench itself adds 1–2; a start value well above 0.5 means something else was using the CPUs)`,
    `- MQTT ${opts.protocol === 5 ? '5.0' : '3.1.1'}; rounds ${opts.rounds}${opts.quick ? ' (--quick)' : ''}; warm-up ${opts.warmup ? 'on' : 'off'}; ` +
      `TCP_NODELAY in mosquitto/aedes ${opts.noDelay ? 'on (--nodelay)' : 'off (their defaults)'}; ` +
      `CPU pinning ${opts.pin ? 'brokers on CPU 0, load generator on the rest (--pin)' : 'off'}`,
    `- fan-in ${s.fanInMessages} msgs from ${s.fanInPublishers} publishers (QoS 1 window ${s.qos1Window}); ` +
      `fan-out ${s.fanOutMessages} msgs × ${s.fanOutSubscribers} subs; latency ${s.latencyRate} msg/s for ${s.latencySeconds} s; ` +
      `${s.idleConnections} idle connections; 64-byte payloads`,
  ].join('\n');
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (!opts) {
    console.log(USAGE);
    return 0;
  }
  if (opts.pin) {
    const cpus = os.cpus().length;
    if (cpus < 2) throw new Error('--pin needs at least 2 CPUs');
    // -a: every thread of this process (libuv pool, GC helpers) moves off CPU 0.
    execFileSync('taskset', ['-a', '-p', '-c', cpus === 2 ? '1' : `1-${cpus - 1}`, String(process.pid)], { stdio: 'ignore' });
  }
  tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-'));
  const cfg: BrokerConfig = {
    repoRoot,
    tmpRoot,
    outpostCmd: opts.outpostCmd,
    mosquittoBin: opts.mosquittoBin,
    protocol: opts.protocol,
    readyTimeoutMs: 10_000,
    noDelay: opts.noDelay,
    pinCpu: opts.pin ? 0 : null,
  };
  const scenarios = SCENARIOS.filter((s) => opts.scenarios.includes(s.id as never));
  const slots = new Map<BrokerName, Slot>();
  const unavailable = new Map<BrokerName, string>();
  let generation = 0;

  const restart = async (b: BrokerName): Promise<BrokerProcess> => {
    const slot = slots.get(b) ?? { proc: null, warm: false };
    slots.set(b, slot);
    await slot.proc?.stop();
    slot.proc = null;
    slot.warm = false;
    slot.proc = await BrokerProcess.start(b, cfg, ++generation);
    return slot.proc;
  };
  const run = (sc: Scenario, proc: BrokerProcess, tag: string, override?: Partial<BenchOptions['scenario']>) => {
    const ctx: ScenarioContext = { broker: proc, protocol: opts.protocol, opts: { ...opts.scenario, ...override }, tag };
    const hardCapMs = opts.scenario.timeoutMs + opts.scenario.latencySeconds * 1000 + 60_000;
    return withTimeout(sc.run(ctx), hardCapMs, `${sc.id} on ${proc.name}`);
  };

  console.log(`outpost broker bench — ${opts.brokers.join(', ')}; scenarios ${scenarios.map((s) => s.id).join(', ')}`);
  for (const b of opts.brokers) {
    try {
      const p = await restart(b);
      console.log(`  ${b}: ready on 127.0.0.1:${p.port} (pid ${p.pid})`);
    } catch (e) {
      unavailable.set(b, (e as Error).message);
      console.log(`  ${b}: UNAVAILABLE — ${(e as Error).message}`);
    }
  }

  const records: Record[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    for (const sc of scenarios) {
      const avail = opts.brokers.filter((b) => !unavailable.has(b));
      const k = (round - 1) % Math.max(1, avail.length);
      for (const b of [...avail.slice(k), ...avail.slice(0, k)]) {
        const slot = slots.get(b)!;
        const rec: Record = { round, scenario: sc, broker: b, result: null, error: null };
        try {
          // idle-conns always gets a fresh process so RSS is not masked by heap already grown.
          if (sc.id === idleScenario.id || !slot.proc?.alive) await restart(b);
          const proc = slot.proc!;
          if (opts.warmup && !slot.warm && sc.id !== idleScenario.id) {
            // Unmeasured; also warms the load generator's own JIT (round 1 was visibly slow without it).
            const warm = { fanInMessages: Math.min(100_000, opts.scenario.fanInMessages) };
            await run(fanInQos0, proc, `bench-${process.pid}-warm${generation}-${b}`, warm);
            slot.warm = true;
          }
          rec.result = await run(sc, proc, `bench-${process.pid}-r${round}-${sc.id}-${b}`);
          if (sc.id !== idleScenario.id) slot.warm = true;
          if (!proc.alive) rec.result.notes.push(`broker exited: ${proc.output.slice(-200)}`);
        } catch (e) {
          rec.error = (e as Error).message;
          await slot.proc?.stop(); // restart clean before the next measurement
        }
        records.push(rec);
        console.log(progressLine(rec));
        await sleep(300);
      }
    }
  }

  for (const slot of slots.values()) await slot.proc?.stop();

  const unavailableNotes = [...unavailable].map(([b, why]) => `- **${b} unavailable**: ${why}`);
  const summary = summaryTable(records, scenarios, opts.brokers, unavailable);
  const md = [
    '# outpost broker benchmark',
    '',
    environment(opts),
    ...(unavailableNotes.length ? ['', ...unavailableNotes] : []),
    '',
    `## Summary (median of ${opts.rounds} round${opts.rounds > 1 ? 's' : ''}; lost/dup/ooo summed over rounds)`,
    '',
    summary,
    '',
    '## Every measurement',
    '',
    detailTable(records),
    '',
  ].join('\n');
  const out = path.resolve(repoRoot, opts.out);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, md);
  console.log(`\n${unavailableNotes.join('\n')}${unavailableNotes.length ? '\n\n' : ''}${summary}\n\nwritten to ${path.relative(process.cwd(), out)}`);
  return 0;
}

main()
  .then((code) => {
    cleanupSync();
    process.exit(code);
  })
  .catch((e: unknown) => {
    console.error('bench failed:', e instanceof Error ? e.message : e);
    cleanupSync();
    process.exit(1);
  });
