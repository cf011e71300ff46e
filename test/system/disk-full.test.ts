/**
 * A full disk under the whole gateway (issue 9): the state directory is a 4 MiB tmpfs (1 MiB of
 * it the gateway's disk reserve), the
 * uplink is down, MQTT clients, MQTT-SN sensors and serial devices keep publishing until the
 * outbox can no longer grow. What outpost could not store it refuses (MQTT 5 PUBACK 0x97,
 * 3.1.1 connection closed, MQTT-SN PUBACK 0x01) and counts by reason; what it acknowledged
 * reaches the cloud once the uplink is back, and publishing works again after the drain.
 *
 * Mounting a tmpfs needs root (CI runs as root).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { totalsByKind, totalsTable } from './lib/checker.js';
import { WholeGateway } from './lib/scenario.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mountPoint = mkdtempSync(join(tmpdir(), 'outpost-small-disk-'));
let mounted = false;

function metricSum(text: string, name: string, label?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name} `) || line.startsWith(`${name}{`))) continue;
    if (label !== undefined && !line.includes(label)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const scenario = new WholeGateway({
  mqttClients: 6,
  snSensors: 10,
  ratePerSource: 40,
  serialRate: 20,
  inflight: 100,
  keepaliveSec: 2,
  pad: 600,
  storeDir: join(mountPoint, 'state'),
  storeReserve: '1MiB',
});
afterAll(async () => {
  await scenario.dispose();
  if (mounted) execFileSync('umount', [mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
}, 30_000);

describe('a full disk under load', () => {
  it('refuses what it cannot store, counts it by reason, loses nothing it acknowledged and recovers after the drain', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a 4 MiB tmpfs as the state directory and must run as root');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint]);
    mounted = true;
    mkdirSync(join(mountPoint, 'state'));

    await scenario.prepare();
    scenario.proxy.refuse(); // the uplink is down from the start: everything buffers
    await scenario.startOutpost();

    const refused = (): number => scenario.mqtt.reduce((a, m) => a + m.refused, 0) + scenario.sensors.reduce((a, s) => a + s.refused, 0);
    const deadline = Date.now() + 60_000;
    while (refused() < 50 && Date.now() < deadline) {
      await sleep(250);
      await scenario.reattachBroken(); // 3.1.1 clients are closed when their message cannot be stored
    }
    expect(refused()).toBeGreaterThanOrEqual(50);
    expect(scenario.outpost!.output()).toMatch(/disk full/);

    // The uplink comes back: the backlog drains, space is reused, publishing is acknowledged again.
    scenario.proxy.resume();
    const ackedAtFull = scenario.mqtt.reduce((a, m) => a + m.acked.size, 0);
    const recoverBy = Date.now() + 60_000;
    for (;;) {
      await sleep(500);
      await scenario.reattachBroken();
      const m = await scenario.metrics();
      const rows = metricSum(m, 'outpost_outbox_rows');
      const acked = scenario.mqtt.reduce((a, x) => a + x.acked.size, 0);
      if (rows < 200 && acked > ackedAtFull + 100) break;
      if (Date.now() > recoverBy) throw new Error(`no recovery within 60 s: ${rows} rows waiting, ${acked - ackedAtFull} acked since the disk was full`);
    }

    const { cloud: checks } = await scenario.settle(60_000);
    const totals = totalsByKind(checks);
    const storeErrors = metricSum(await scenario.metrics(), 'outpost_outbox_dropped_total', 'reason="store-error"');
    const reserveReleased = scenario.outpost!.output().includes('released the disk reserve');
    console.log(`disk full: reserve ${reserveReleased ? 'released' : 'not needed'}; ${refused()} refusals seen by MQTT 5 clients and MQTT-SN sensors, ${storeErrors} store-error drops counted\n${totalsTable(totals)}`);
    expect(checks.filter((c) => c.lostCount > 0).map((c) => `${c.name} lost ${c.lost.join(',')}`)).toEqual([]);
    expect(checks.filter((c) => c.orderViolations > 0).map((c) => c.name)).toEqual([]);
    // Every refusal a client saw was counted as a store-error drop (3.1.1 messages that were
    // never acknowledged and serial readings add to the count).
    expect(storeErrors).toBeGreaterThanOrEqual(refused());
  }, 180_000);
});
