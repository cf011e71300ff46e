/**
 * A real outpost process whose wall clock NTP steps forward while it runs (libfaketime): the
 * backlog acknowledged while the cloud was down survives a step of 3 days past max_age and
 * reaches the cloud. Only the wall clock is faked (FAKETIME_DONT_FAKE_MONOTONIC=1), as on a
 * Raspberry Pi that booted without a real-time clock; the machine's clock is never touched.
 *
 *   mosquitto_pub (QoS 1) ──▶ outpost (LD_PRELOAD libfaketime, timestamp file: +0 → +3d)
 *                               └──▶ bridge ──mTLS──▶ Mosquitto (down, then up) ──▶ CloudObserver
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/bridge-gateway.js';
import { CloudObserver } from '../helpers/cloud-observer.js';
import { Mosquitto } from '../helpers/mosquitto.js';
import { OutpostProcess, writeProcessConfig } from '../helpers/outpost-process.js';
import { mtlsBridge } from '../helpers/bridge-config.js';

/** libfaketime as Debian installs it (package faketime, see .ci/run). */
function findLibfaketime(): string | undefined {
  try {
    return execFileSync('dpkg', ['-L', 'libfaketime'], { encoding: 'utf8' })
      .split('\n')
      .find((f) => f.endsWith('/libfaketime.so.1'));
  } catch {
    return undefined;
  }
}
const LIB = findLibfaketime();

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await Promise.resolve(f()).catch(() => undefined);
});

describe.skipIf(LIB === undefined || !existsSync(LIB))('outpost under libfaketime', () => {
  it('delivers every acknowledged message to the cloud after NTP steps the wall clock 3 days forward, past max_age', async () => {
    const cloud = new Mosquitto({ requireCertificate: true, persistence: true });
    cleanups.push(() => cloud.dispose());
    await cloud.start();
    const obs = await CloudObserver.connect(cloud, ['sites/17/#']);
    cleanups.push(() => obs.close());
    await cloud.stop();

    const dir = mkdtempSync(join(tmpdir(), 'outpost-faketime-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const stamp = join(dir, 'faketime');
    writeFileSync(stamp, '+0\n');
    const { file: config, port } = await writeProcessConfig(dir, {
      bridges: [
        mtlsBridge(cloud.tlsPort, {
          buffer: { max_age: '1h' },
          rules: [{ pattern: 'sensors/#', remote_prefix: 'sites/17/' }],
        }),
      ],
    });
    const env = {
      ...process.env,
      LD_PRELOAD: LIB,
      FAKETIME_TIMESTAMP_FILE: stamp,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
    const outpost = await OutpostProcess.start(config, { env });
    cleanups.push(() => outpost.stop());

    const N = 30;
    for (let i = 0; i < N; i++) {
      // mosquitto_pub exits 0 only once its QoS 1 PUBLISH was acknowledged (committed to the outbox).
      execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', 'sensors/boiler', '-m', `m-${i}`]);
    }

    writeFileSync(stamp, '+3d\n'); // NTP steps the clock forward while outpost runs
    const deadline = Date.now() + 5000;
    while (outpost.logLines('wall clock stepped forward by 3 d; stored ages and expiry deadlines moved with it').length === 0) {
      if (Date.now() > deadline) throw new Error(`no step logged: ${outpost.output().slice(-2000)}`);
      await sleep(50);
    }

    await cloud.start();
    await obs.until(() => new Set(obs.messages.map((m) => m.payload.toString())).size === N, `all ${N} messages at the cloud`, 20_000);
    expect(new Set(obs.messages.map((m) => m.payload.toString()))).toEqual(new Set(Array.from({ length: N }, (_, i) => `m-${i}`)));
    expect(outpost.logLines('wall clock stepped forward by 3 d; stored ages and expiry deadlines moved with it')).toHaveLength(1);
  }, 60_000);
});
