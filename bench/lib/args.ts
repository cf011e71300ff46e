// Command-line options for bench/broker-bench.ts.
import { parseArgs } from 'node:util';
import { ALL_BROKERS, DEFAULT_OUTPOST_CMD, type BrokerName } from './brokers.js';
import type { ProtocolVersion } from './mqtt-client.js';
import type { ScenarioOptions } from './scenarios/common.js';

export const SCENARIO_IDS = ['fanin-qos0', 'fanin-qos1', 'fanout-qos0', 'latency', 'idle-conns'] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];

export interface BenchOptions {
  brokers: BrokerName[];
  scenarios: ScenarioId[];
  rounds: number;
  quick: boolean;
  protocol: ProtocolVersion;
  outpostCmd: string | null;
  mosquittoBin: string;
  warmup: boolean;
  noDelay: boolean;
  pin: boolean;
  out: string;
  scenario: ScenarioOptions;
}

export const USAGE = `Usage: npm run bench -- [options]

  --brokers a,b        brokers to run: ${ALL_BROKERS.join(',')} (default: all)
  --scenarios a,b      ${SCENARIO_IDS.join(',')} (or 1-5; default: all)
  --rounds N           interleaved rounds; the median is reported (default 3, --quick 1)
  --quick              small counts; whole run well under a minute (smoke test)
  --protocol 4|5       MQTT 3.1.1 (4, default) or 5.0
  --outpost-cmd CMD    command for the outpost broker; {config} and {port} are
                       substituted, otherwise "--config <file>" is appended
                       (default: "${DEFAULT_OUTPOST_CMD}")
  --mosquitto PATH     mosquitto binary (default /usr/sbin/mosquitto)
  --messages N         fan-in total messages across 10 publishers (default 200000)
  --fanout-messages N  fan-out messages published, x100 deliveries (default 10000)
  --latency-seconds S  latency scenario duration (default 10)
  --latency-rate R     latency scenario publish rate, msg/s (default 1000)
  --connections N      idle connections (default 5000)
  --timeout S          max seconds to wait for deliveries per measurement (default 30)
  --nodelay            set TCP_NODELAY in mosquitto (set_tcp_nodelay) and aedes;
                       default is each broker's own default (Nagle on)
  --pin                pin brokers to CPU 0 and the load generator to the other
                       CPUs (taskset); steadier numbers, but a Node broker's GC
                       threads then share its one core
  --no-warmup          skip the unmeasured warm-up run after each broker (re)start
  --out FILE           markdown report (default bench/results/latest.md)
  -h, --help
`;

/** A whole-number option of at least 1 (`def` when not given); a clear error otherwise. */
export function wholeNumberOpt(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number >= 1, got ${v}`);
  return n;
}

function intOpt(v: string | undefined, name: string, def: number, min = 1): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${v}`);
  return n;
}

function listOpt<T extends string>(v: string | undefined, all: readonly T[], name: string): T[] {
  if (v === undefined) return [...all];
  const out: T[] = [];
  for (const raw of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const byIndex = /^\d+$/.test(raw) ? all[Number(raw) - 1] : undefined;
    const hit = byIndex ?? all.find((x) => x === raw) ?? all.find((x) => x.startsWith(raw));
    if (!hit) throw new Error(`unknown ${name} "${raw}"; choose from ${all.join(', ')}`);
    if (!out.includes(hit)) out.push(hit);
  }
  if (out.length === 0) throw new Error(`--${name} is empty`);
  return out;
}

export function parseOptions(argv: string[]): BenchOptions | null {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      brokers: { type: 'string' },
      scenarios: { type: 'string' },
      rounds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      protocol: { type: 'string' },
      'outpost-cmd': { type: 'string' },
      mosquitto: { type: 'string' },
      messages: { type: 'string' },
      'fanout-messages': { type: 'string' },
      'latency-seconds': { type: 'string' },
      'latency-rate': { type: 'string' },
      connections: { type: 'string' },
      timeout: { type: 'string' },
      'no-warmup': { type: 'boolean', default: false },
      nodelay: { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) return null;
  const quick = v.quick === true;
  const proto = v.protocol ?? '4';
  let protocol: ProtocolVersion;
  if (['4', '3.1.1', '311'].includes(proto)) protocol = 4;
  else if (['5', '5.0'].includes(proto)) protocol = 5;
  else throw new Error(`--protocol must be 4 (3.1.1) or 5, got ${proto}`);
  return {
    brokers: listOpt(v.brokers, ALL_BROKERS, 'brokers'),
    scenarios: listOpt(v.scenarios, SCENARIO_IDS, 'scenarios'),
    rounds: Math.floor(intOpt(v.rounds, 'rounds', quick ? 1 : 3)),
    quick,
    protocol,
    outpostCmd: v['outpost-cmd'] ?? null,
    mosquittoBin: v.mosquitto ?? '/usr/sbin/mosquitto',
    warmup: !v['no-warmup'] && !quick,
    noDelay: v.nodelay === true,
    pin: v.pin === true,
    out: v.out ?? 'bench/results/latest.md',
    scenario: {
      fanInMessages: Math.floor(intOpt(v.messages, 'messages', quick ? 20_000 : 200_000, 10)),
      fanInPublishers: 10,
      qos1Window: 64,
      fanOutMessages: Math.floor(intOpt(v['fanout-messages'], 'fanout-messages', quick ? 1_000 : 10_000)),
      fanOutSubscribers: 100,
      latencyRate: intOpt(v['latency-rate'], 'latency-rate', 1000),
      latencySeconds: intOpt(v['latency-seconds'], 'latency-seconds', quick ? 2 : 10, 0.1),
      idleConnections: Math.floor(intOpt(v.connections, 'connections', quick ? 500 : 5000)),
      timeoutMs: intOpt(v.timeout, 'timeout', quick ? 10 : 30) * 1000,
      idleMs: 2000,
      connectTimeoutMs: 10_000,
    },
  };
}
