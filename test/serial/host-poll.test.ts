import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceConfig } from '../../src/config/serial-schema.js';
import { defineDriver, z } from '../../src/serial/driver-api.js';
import { settle } from '../helpers/memory-ports.js';
import { serialConfig, startHost, type HostRig } from '../helpers/serial-host.js';

/** A polled bus driver: asks "Q<id>", expects "A<id> <value>" within 200 ms. */
const pollDriver = defineDriver({
  name: 'test-poll',
  summary: 'test',
  options: z.object({ id: z.number() }).strict(),
  shared: true,
  framing: () => ({ type: 'delimiter', delimiter: Buffer.from('\n'), maxLength: 64 }),
  create: (o, ctx) => ({
    poll: {
      intervalMs: 1000,
      run: async () => {
        const f = await ctx.transact(Buffer.from(`Q${o.id}\n`), { timeoutMs: 200, accept: (x) => x.toString().startsWith(`A${o.id} `) });
        return f ? { readings: [{ metric: 'v', value: Number(f.toString().slice(3)) }], reachable: true } : { readings: [], reachable: false };
      },
    },
  }),
});

function busConfig(ids: number[]) {
  const base = serialConfig('devices: []');
  const devices = ids.map((id) => ({ ...serialConfig(`devices: [{ id: d${id}, port: /dev/ttyRS485, baud: 9600, driver: line-kv }]`).devices[0]!, driver: 'test-poll', options: { id } }) as unknown as DeviceConfig);
  return { ...base, devices };
}

let rig: HostRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('polled devices sharing one bus', () => {
  it('take turns: one request on the wire at a time, the next after the answer or the timeout and the inter-frame silence', async () => {
    rig = await startHost(busConfig([1, 2, 3]), { drivers: [pollDriver] });
    rig.ports.plug('/dev/ttyRS485');
    await rig.advance(1000);
    const dev = rig.ports.device('/dev/ttyRS485');
    const wire: string[] = [];
    dev.on('data', (b: Buffer) => wire.push(...b.toString().trim().split('\n')));
    await rig.advance(0);
    expect(wire).toEqual(['Q1']); // the others wait their turn
    dev.write('A1 10\n');
    await settle();
    expect(wire).toEqual(['Q1']); // 3.5 characters of silence at 9600 baud first (4 ms)
    await rig.advance(4);
    expect(wire).toEqual(['Q1', 'Q2']);
    // d2 does not answer: its timeout frees the bus
    await rig.advance(199);
    expect(wire).toHaveLength(2);
    await rig.advance(1 + 4);
    expect(wire).toEqual(['Q1', 'Q2', 'Q3']);
    dev.write('A3 30\n');
    await settle();
    expect(rig.on('sensors/d1/v').map((p) => JSON.parse(p).value)).toEqual([10]);
    expect(rig.on('sensors/d3/v').map((p) => JSON.parse(p).value)).toEqual([30]);
    expect(rig.host.isOnline('d1')).toBe(true);
    expect(rig.host.isOnline('d2')).toBe(false);
    expect(rig.host.counters('d2')).toMatchObject({ timeouts: 1 });
  });

  it('count each answer as a frame of the device it answers, as for unsolicited frames', async () => {
    rig = await startHost(busConfig([1, 2]), { drivers: [pollDriver] });
    rig.ports.plug('/dev/ttyRS485');
    await rig.advance(1000);
    const dev = rig.ports.device('/dev/ttyRS485');
    dev.on('data', (b: Buffer) => {
      if (b.toString().startsWith('Q1')) dev.write('A1 10\n');
    });
    for (let i = 0; i < 3; i++) await rig.advance(1000);
    const d1 = rig.host.counters('d1')!;
    expect(d1.frames).toBeGreaterThanOrEqual(3);
    expect(d1.frames).toBe(d1.readings);
    expect(rig.host.counters('d2')).toMatchObject({ frames: 0, readings: 0 });
  });

  it('starts the next poll only after the readings of the last one were committed', async () => {
    rig = await startHost(busConfig([1]), { drivers: [pollDriver] });
    const commits: (() => void)[] = [];
    rig.broker.addDurableSink({ name: 'slow', selects: (m) => m.topic.startsWith('sensors/'), accept: () => new Promise<void>((r) => commits.push(r)) });
    rig.ports.plug('/dev/ttyRS485');
    await rig.advance(1000);
    const dev = rig.ports.device('/dev/ttyRS485');
    const wire: string[] = [];
    dev.on('data', (b: Buffer) => {
      wire.push(b.toString());
      dev.write('A1 5\n');
    });
    await rig.advance(0);
    expect(wire).toHaveLength(1);
    await rig.advance(5000);
    expect(wire).toHaveLength(1); // the commit has not happened: no new poll
    commits.shift()!();
    await rig.advance(1000);
    expect(wire).toHaveLength(2);
    expect(rig.host.linkOf('d1')!.isPaused).toBe(false); // polled readings never pause the bus
  });
});
