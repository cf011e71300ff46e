import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/message.js';
import { settle } from '../helpers/memory-ports.js';
import { serialConfig, startHost, type HostRig } from '../helpers/serial-host.js';

let rig: HostRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('serial publish path under a slow durable sink', () => {
  it('pauses the port at max_pending readings waiting for the commit, and resumes without losing any', async () => {
    rig = await startHost(serialConfig(['max_pending: 4', 'devices:', '  - { id: boiler, port: /dev/ttyUSB0, driver: line-kv }'].join('\n')));
    const waiting: (() => void)[] = [];
    const committed: string[] = [];
    rig.broker.addDurableSink({
      name: 'slow-disk',
      selects: (m) => m.topic.startsWith('sensors/'),
      accept: (m: Message) => new Promise<void>((resolve) => waiting.push(() => (committed.push(m.payload.toString()), resolve()))),
    });
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    const dev = rig.ports.device('/dev/ttyUSB0');
    for (let i = 0; i < 50; i++) dev.write(`n=${i}\n`);
    await settle(5);
    const link = rig.host.linkOf('boiler')!;
    expect(link.isPaused).toBe(true);
    expect(link.pending).toBe(4);
    expect(waiting).toHaveLength(4); // the other 46 lines wait in the port, not in our memory
    let peak = 0;
    while (waiting.length > 0) {
      for (const done of waiting.splice(0)) done();
      await settle(3);
      peak = Math.max(peak, link.pending);
    }
    expect(peak).toBeLessThanOrEqual(4);
    expect(committed.map((p) => JSON.parse(p).value)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(link.isPaused).toBe(false);
  });

  it('counts a reading the sink refuses and goes on with the next', async () => {
    rig = await startHost(serialConfig(['devices:', '  - { id: boiler, port: /dev/ttyUSB0, driver: line-kv }'].join('\n')));
    rig.broker.addDurableSink({ name: 'full', selects: () => true, accept: async (m) => { if (m.topic.endsWith('/a')) throw new Error('outbox full'); } });
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    rig.ports.device('/dev/ttyUSB0').write('a=1 b=2\n');
    await settle();
    expect(rig.host.counters('boiler')).toMatchObject({ published: 2, publish_failures: 1 });
    expect(rig.logs.some((l) => l.msg === 'reading not accepted by the bus')).toBe(true);
  });
});

describe('device map rules on the publish path', () => {
  it('holds back values inside the deadband until max_interval, and plain payloads are the bare value', async () => {
    rig = await startHost(
      serialConfig(
        ['devices:', '  - id: tank', '    port: /dev/ttyUSB0', '    driver: line-kv', '    payload: plain', '    only_mapped: true', '    metrics:', '      level: { deadband: 0.5, max_interval: 1m, decimals: 1 }'].join('\n'),
      ),
    );
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    const dev = rig.ports.device('/dev/ttyUSB0');
    for (const line of ['level=10.02 temp=3', 'level=10.3', 'level=10.6', 'level=10.5']) {
      dev.write(`${line}\n`);
      await rig.advance(1000);
    }
    await rig.advance(60_000);
    dev.write('level=10.5\n');
    await settle();
    expect(rig.on('sensors/tank/level')).toEqual(['10', '10.6', '10.5']);
    expect(rig.on('sensors/tank/temp')).toEqual([]);
    expect(rig.host.counters('tank')).toMatchObject({ readings: 6, published: 3 });
  });
});

describe('device commands', () => {
  const config = () =>
    serialConfig(['devices:', '  - { id: boiler, port: /dev/ttyUSB0, driver: line-json, command_topic: "cmd/{device}" }', '  - { id: gps, port: /dev/ttyACM0, driver: nmea, command_topic: "cmd/gps" }'].join('\n'));

  function send(r: HostRig, topic: string, payload: string, properties?: Message['properties']): void {
    void r.broker.publish({ topic, payload: Buffer.from(payload), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'app' }, properties });
  }

  it('writes a command to the device and publishes the result', async () => {
    rig = await startHost(config());
    rig.ports.plug('/dev/ttyUSB0');
    rig.ports.plug('/dev/ttyACM0');
    await rig.advance(1000);
    const received: string[] = [];
    rig.ports.device('/dev/ttyUSB0').on('data', (b: Buffer) => received.push(b.toString()));
    const gps: string[] = [];
    rig.ports.device('/dev/ttyACM0').on('data', (b: Buffer) => gps.push(b.toString()));
    send(rig, 'cmd/boiler', '{"setpoint":55}');
    send(rig, 'cmd/gps', 'PMTK220,1000');
    await settle();
    expect(received).toEqual(['{"setpoint":55}\n']);
    expect(gps).toEqual(['$PMTK220,1000*1F\r\n']);
    expect(rig.on('cmd/boiler/result')).toEqual(['{"ok":true}']);
    expect(rig.on('cmd/gps/result')).toEqual(['{"ok":true,"value":"$PMTK220,1000*1F"}']);
    expect(rig.host.counters('boiler')).toMatchObject({ commands: 1, command_failures: 0 });
  });

  it('answers on the MQTT 5 response topic with the correlation data, and says when the port is not open', async () => {
    rig = await startHost(config());
    send(rig, 'cmd/boiler', 'x', { responseTopic: 'app/replies', correlationData: Buffer.from('42') });
    await settle();
    const reply = rig.messages.find((m) => m.topic === 'app/replies')!;
    expect(reply.payload.toString()).toBe('{"ok":false,"detail":"port is not open"}');
    expect(reply.properties?.correlationData?.toString()).toBe('42');
    expect(rig.host.counters('boiler')).toMatchObject({ commands: 1, command_failures: 1 });
  });
});
