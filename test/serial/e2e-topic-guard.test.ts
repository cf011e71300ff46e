/**
 * A metric name comes from the device (a JSON key); with a "{metric}" topic template an empty
 * key rendered to an empty topic, which the broker sent to mosquitto_sub, which dropped the
 * connection on it. On a real pty, seen by mosquitto_sub: such a reading is counted, the
 * subscriber stays connected and the readings around it arrive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MosquittoSub } from '../helpers/mosquitto-sub.js';
import { SerialSite } from '../helpers/serial-site.js';

let site: SerialSite | undefined;
let sub: MosquittoSub | undefined;

afterEach(async () => {
  sub?.stop();
  sub = undefined;
  await site?.dispose();
  site = undefined;
});

describe('a device key that gives no valid topic', () => {
  it('is counted as a decode failure while mosquitto_sub stays connected and gets the readings around it', async () => {
    site = new SerialSite();
    const pty = await site.lab.pty('ttyACM-json');
    const gateway = await site.start(['  devices:', `    - { id: hub, port: ${pty.path}, driver: line-json, topic: "{metric}" }`], 'silent');
    sub = new MosquittoSub(gateway.addresses[0]!.port, ['#', '$SYS/outpost/serial/+/state']);
    await sub.next('$SYS/outpost/serial/hub/state', (p) => p === 'online');

    await pty.write('{"a":1}\n{"":2}\n{"b":3}\n');
    await sub.next('b');
    expect(sub.on('a').map((p) => JSON.parse(p).value)).toEqual([1]);
    expect(sub.lines.filter((l) => l.topic === '')).toEqual([]);
    expect(gateway.serial.counters('hub')).toMatchObject({ readings: 3, published: 2, decode_failures: 1 });
  }, 20_000);
});
