/**
 * An MQTT 5 command names the topic the device answers on. The device publishes its answer
 * as any responder does, under its own grants: a response topic under $SYS (the gateway's
 * device states, which clients may not publish) or outside the device's `serial` ACL section
 * used to be published all the same, so whoever could command a device could write there
 * (an NMEA command's echo is text of the commander's choosing).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/message.js';
import { settle } from '../helpers/memory-ports.js';
import { serialConfig, startHost, type HostRig } from '../helpers/serial-host.js';

let rig: HostRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

const config = () => serialConfig('devices:\n  - { id: gps, port: /dev/ttyACM0, driver: nmea, command_topic: "cmd/{device}" }');

function send(r: HostRig, responseTopic: string, corr: string): void {
  const properties: Message['properties'] = { responseTopic, correlationData: Buffer.from(corr) };
  void r.broker.publish({ topic: 'cmd/gps', payload: Buffer.from('PMTK220,1000'), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'app' }, properties });
}

const replies = (r: HostRig, topic: string) => r.messages.filter((m) => m.topic === topic).map((m) => m.properties?.correlationData?.toString());

describe('the MQTT 5 response topic of a device command', () => {
  it('is never under $: the answer goes to the command result topic and the gateway state stays as it was', async () => {
    rig = await startHost(config());
    rig.ports.plug('/dev/ttyACM0');
    await rig.advance(1000);
    send(rig, '$SYS/outpost/serial/gps/state', '1');
    await settle();
    expect(rig.on('$SYS/outpost/serial/gps/state')).toEqual(['offline', 'online']);
    expect(replies(rig, 'cmd/gps/result')).toEqual(['1']);
    expect(rig.logs.find((l) => l.msg.startsWith('response topic not allowed'))).toMatchObject({ responseTopic: '$SYS/outpost/serial/gps/state', topic: 'cmd/gps/result' });
  });

  it('is used when the device may write it, and refused when its serial ACL section does not allow it', async () => {
    rig = await startHost(config(), { acl: 'serial gps\nwrite sensors/gps/#\nwrite cmd/gps/#\nwrite replies/#\n' });
    rig.ports.plug('/dev/ttyACM0');
    await rig.advance(1000);
    send(rig, 'replies/app-1', 'ok');
    send(rig, 'sensors/boiler/temp', 'denied');
    await settle();
    expect(replies(rig, 'replies/app-1')).toEqual(['ok']);
    expect(rig.on('sensors/boiler/temp')).toEqual([]);
    expect(replies(rig, 'cmd/gps/result')).toEqual(['denied']);
  });
});
