/**
 * Runs a driver the way the host does, without a port: validate options with the driver's
 * schema, build its framer, push bytes (in chunks of a chosen size), parse every frame.
 */
import type { DriverContext, DriverDefinition, ParseResult, Reading } from '../../src/serial/driver-api.js';
import type { DiscardReason } from '../../src/serial/framer.js';
import { createFramer } from '../../src/serial/framers/index.js';

export interface DriverRun {
  readings: Reading[][];
  failures: Extract<ParseResult, { ok: false }>[];
  discards: Partial<Record<DiscardReason, number>>;
  writes: Buffer[];
}

export function stubContext(writes: Buffer[] = [], device = 'dev', failures: DriverRun['failures'] = []): DriverContext {
  return {
    device,
    line: { baud: 9600, dataBits: 8, parity: 'none', stopBits: 1 },
    now: () => 1_700_000_000_000,
    write: async (b) => void writes.push(b),
    transact: async () => undefined,
    fail: (error, detail) => void failures.push({ ok: false, error, detail }),
  };
}

export function runDriver(def: DriverDefinition, rawOptions: unknown, bytes: Buffer, chunk = bytes.length || 1): DriverRun {
  const options = def.options.parse(rawOptions ?? {});
  const out: DriverRun = { readings: [], failures: [], discards: {}, writes: [] };
  // Failures a driver reports through ctx.fail (more than one per frame) count like returned ones.
  const instance = def.create(options, stubContext(out.writes, 'dev', out.failures));
  const framer = createFramer(def.framing(options), {
    frame: (f) => {
      const r = instance.parse!(f);
      if (r.ok) out.readings.push(r.readings);
      else out.failures.push(r);
    },
    discard: (n, reason) => (out.discards[reason] = (out.discards[reason] ?? 0) + n),
  });
  for (let at = 0; at < bytes.length; at += chunk) framer.push(bytes.subarray(at, at + chunk));
  return out;
}

/** The readings of a run as "metric=value" strings, one array per frame. */
export function flat(run: DriverRun): string[][] {
  return run.readings.map((rs) => rs.map((r) => `${r.metric}=${String(r.value)}`));
}
