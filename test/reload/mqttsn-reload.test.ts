/**
 * MQTT-SN predefined topic ids across a live reload: a real UDP gateway and test client; the
 * connected sensor keeps its session, and its next PUBLISH on a predefined id uses the new table.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { MsgType } from '../../src/mqttsn/packets.js';
import { mqttsnStep } from '../../src/reload/mqttsn-step.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const cfg = (yaml: string) => parseConfigText(`mqttsn:\n  port: 0\n${yaml}`, 'outpost.yaml');

describe('MQTT-SN predefined topics reload', () => {
  it('applies new global and per-client predefined ids to the next PUBLISH of a sensor that stays connected', async () => {
    h = await startSnGateway('predefined_topics: { 7: sensors/door }');
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('door-1');
    const s = await h.client();
    await s.connect('special');
    c.publish(7, 'a', { qos: 1, topicIdType: 1 });
    await c.next(MsgType.PUBACK);

    const step = mqttsnStep(h.gw);
    const prev = cfg('  predefined_topics: { 7: sensors/door }\n');
    const next = cfg('  predefined_topics: { 7: sensors/front-door, 8: sensors/window }\n  clients: { special: { predefined_topics: { 7: special/door } } }\n');
    expect(await step.apply(next, prev)).toEqual({ changes: ['mqtt-sn predefined topics replaced'] });
    expect(await step.apply(next, next)).toEqual({ changes: [] });

    c.publish(7, 'b', { qos: 1, topicIdType: 1 });
    c.publish(8, 'c', { qos: 1, topicIdType: 1 });
    s.publish(7, 'd', { qos: 1, topicIdType: 1 });
    await until(() => seen.length === 4, 'four messages');
    expect(seen.map((m) => `${m.topic}=${m.payload.toString()}`).sort()).toEqual(['sensors/door=a', 'sensors/front-door=b', 'sensors/window=c', 'special/door=d']);
    expect(h.gw.session('door-1')?.state).toBe('active');
  });

  it('does nothing when the gateway is off or the section is absent', async () => {
    expect(await mqttsnStep(undefined).apply(cfg(''), cfg(''))).toEqual({ changes: [] });
  });
});
