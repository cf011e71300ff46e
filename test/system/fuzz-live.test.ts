/**
 * The short live-gateway fuzz of the default test run (issue 9): one real outpost process
 * gets random and mutated MQTT packets, MQTT-SN datagrams and serial bytes at once, and keeps
 * serving. The full run (1,000,000 packets, 1,000,000 datagrams, 100 MB) is `npm run fuzz`.
 */
import { describe, expect, it } from 'vitest';
import { liveFuzzTable, runLiveFuzz } from './lib/live-fuzz.js';

describe('fuzzing a live gateway on every input at once', () => {
  it('keeps running, counts the garbage, still serves MQTT and MQTT-SN, and gives the memory back', async () => {
    const r = await runLiveFuzz({ mqttPackets: 50_000, snDatagrams: 50_000, serialBytes: 4 * 1024 * 1024, settleMs: 5000 });
    console.log(`live fuzz (short run)\n${liveFuzzTable(r)}`);
    expect(r.stillRunning).toBe(true);
    expect(r.mqttRoundTrip).toBe(true);
    expect(r.snPublishAcked).toBe(true);
    expect(r.mqttPackets).toBeGreaterThanOrEqual(50_000);
    // Garbage is counted on every input: most fuzz connections end in a protocol violation,
    // most datagrams are dropped with a reason, and noise on the serial lines is discarded.
    expect(r.counted.mqttViolations).toBeGreaterThan(r.mqttConnections / 2);
    expect(r.counted.mqttsnDrops).toBeGreaterThan(r.snDatagrams / 10);
    expect(r.counted.serialDiscardedBytes + r.counted.serialDecodeFailures).toBeGreaterThan(0);
    // The tsx loader's own memory is part of the baseline here; the full run measures the built process.
    expect(r.rssAfterKiB).toBeLessThan(r.rssBaselineKiB * 1.5);
  }, 180_000);
});
