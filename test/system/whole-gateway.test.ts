/**
 * The short whole-gateway run of the default test suite (issue 9): one real outpost process
 * with MQTT clients, MQTT-SN sensors, three serial devices on socat ptys and a TLS bridge to a
 * real Mosquitto through the fault proxy, taken through uplink drops, a zombie uplink, a slow
 * link, a cloud restart, a pulled serial cable, a SIGHUP reload that replaces the bridge and
 * two kill -9 crashes. The long version with
 * field-life figures is `npm run soak`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { totalsByKind, totalsTable } from './lib/checker.js';
import { WholeGateway } from './lib/scenario.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const scenario = new WholeGateway({ mqttClients: 10, snSensors: 50, ratePerSource: 5, serialRate: 5, inflight: 100, keepaliveSec: 2 });
afterAll(() => scenario.dispose(), 30_000);

describe('the whole gateway under faults', () => {
  it('delivers every acknowledged message to the cloud once and in order per source, through drops, a zombie and a half-open link, a cloud restart, a pulled cable, a reload and two kill -9', async () => {
    await scenario.prepare();
    await scenario.startOutpost();
    await sleep(2000);

    // Uplink drops (a NAT reset, a cut cable) and a slow link.
    scenario.proxy.drop();
    await sleep(1000);
    scenario.proxy.drop();
    await sleep(1000);
    scenario.proxy.slow(20_000);
    await sleep(1500);
    scenario.proxy.resume();

    // A zombie link and a half-open one: each found within two keepalives (plus dial slack).
    const zombieMs = await scenario.zombieUplink('stall');
    await sleep(1000);
    const halfOpenMs = await scenario.zombieUplink('half-open');

    await scenario.cloud.restart();
    await sleep(1000);
    await scenario.serial[0]!.unplugFor(800);
    await sleep(1000);

    // A reload in the middle of traffic: the bridge is replaced (new inflight window) while
    // everyone keeps publishing.
    const reloaded = await scenario.reload((c) => {
      const bridges = c['bridges'] as Record<string, unknown>[];
      bridges[0]!['inflight'] = 50;
    });
    expect(reloaded['msg']).toBe('config reloaded');
    await sleep(1000);

    for (let i = 0; i < 2; i++) {
      await scenario.crashAndRestart();
      await sleep(1500);
      await scenario.reattachBroken();
    }
    await sleep(1500);

    const { cloud: checks, local } = await scenario.settle(40_000);
    const totals = totalsByKind(checks);
    const localTotals = totalsByKind(local);
    console.log(`whole gateway (short run): zombie uplink found in ${zombieMs} ms, half-open in ${halfOpenMs} ms, ${scenario.crashes} kill -9\nat the cloud:\n${totalsTable(totals)}\nat the persistent local subscriber:\n${totalsTable(localTotals)}`);

    const flaps = 2 + 2 + 1 + 1; // two drops, the zombie and the half-open link, the cloud restart, the bridge replaced by the reload
    const byKind = Object.fromEntries(totals.map((t) => [t.kind, t]));
    // Nothing acknowledged is lost, and every source got through.
    expect(checks.filter((c) => c.lostCount > 0).map((c) => `${c.name} lost ${c.lost.join(',')}`)).toEqual([]);
    expect(checks.filter((c) => c.arrived === 0).map((c) => c.name)).toEqual([]);
    // The persistent local subscriber, across two kill -9 with its session in the store, got
    // every acknowledged message too.
    expect(local.filter((c) => c.lostCount > 0).map((c) => `${c.name} lost locally ${c.lost.join(',')}`)).toEqual([]);
    // Per-source order at the cloud.
    expect(checks.filter((c) => c.orderViolations > 0).map((c) => c.name)).toEqual([]);
    // Duplicates only within the inflight window per crash or flap.
    expect(byKind['mqtt']!.duplicates + byKind['sn']!.duplicates + byKind['serial']!.duplicates).toBeLessThanOrEqual(
      scenario.size.inflight * (scenario.crashes + flaps),
    );
    expect(zombieMs).toBeLessThanOrEqual(2 * scenario.size.keepaliveSec * 1000 + 1500);
    expect(halfOpenMs).toBeLessThanOrEqual(2 * scenario.size.keepaliveSec * 1000 + 1500);
    // Sensors came back from a new UDP port after each crash.
    expect(scenario.sensors.filter((s) => s.ports.length < 3 || s.ports.some((p, i) => i > 0 && p === s.ports[i - 1])).map((s) => `${s.name} ${s.ports.join(',')}`)).toEqual([]);
    expect(byKind['mqtt']!.acked).toBeGreaterThan(100);
    expect(byKind['sn']!.acked).toBeGreaterThan(500);
  }, 150_000);
});
