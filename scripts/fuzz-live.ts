// The full live-gateway fuzz of issue 9 against the built outpost (npm run build first; `npm run fuzz` does):
// 1,000,000 random and mutated MQTT packets, 1,000,000 MQTT-SN datagrams and 100 MB of random serial
// bytes at once. Exit 0 only when the process survived, still serves MQTT and MQTT-SN, and its RSS
// came back within 10 % of the baseline (taken after a warm-up round of 1 % of each input).
// Run: npm run fuzz -- [--mqtt 1000000] [--mqttsn 1000000] [--serial-mb 100] [--settle-s 15]
import { parseArgs } from 'node:util';
import { liveFuzzTable, runLiveFuzz } from '../test/system/lib/live-fuzz.js';

const { values } = parseArgs({
  options: {
    mqtt: { type: 'string', default: '1000000' },
    mqttsn: { type: 'string', default: '1000000' },
    'serial-mb': { type: 'string', default: '100' },
    seed: { type: 'string', default: '20261128' },
    'settle-s': { type: 'string', default: '15' },
  },
});
const started = Date.now();
const log = (s: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${s}`);
const r = await runLiveFuzz({
  mqttPackets: Number(values.mqtt),
  snDatagrams: Number(values.mqttsn),
  serialBytes: Number(values['serial-mb']) * 1024 * 1024,
  seed: Number(values.seed),
  built: true,
  settleMs: Number(values['settle-s']) * 1000,
  progress: log,
});
console.log(`\n## Live fuzz (${new Date().toISOString()}, seed ${values.seed})\n\n${liveFuzzTable(r)}`);
const ok = r.stillRunning && r.mqttRoundTrip && r.snPublishAcked && r.rssAfterKiB <= r.rssBaselineKiB * 1.1;
if (!ok) console.log('FAILED: see the figures above');
process.exitCode = ok ? 0 : 1;
