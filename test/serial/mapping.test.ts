import { describe, expect, it } from 'vitest';
import { metricMapSchema } from '../../src/config/serial-schema.js';
import { DeviceMapper, renderTemplate, topicSafe, type MappingSettings } from '../../src/serial/mapping.js';
import type { Reading } from '../../src/serial/driver-api.js';

const settings = (metrics: Record<string, object> = {}, extra: Partial<MappingSettings> = {}): MappingSettings => ({
  device: 'dev',
  driver: 'line-kv',
  topic: 'sensors/{device}/{metric}',
  payload: 'json',
  qos: 1,
  retain: true,
  onlyMapped: false,
  metrics: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, metricMapSchema.parse(v)])),
  ...extra,
});

const one = (m: DeviceMapper, r: Reading, now = 1000) => m.map([r], now).map((x) => [x.topic, x.payload.toString()]);

describe('device map', () => {
  const cases: { name: string; map: Record<string, object>; reading: Reading; out: [string, string][] }[] = [
    { name: 'passes a value through with its driver unit and the reading time', map: {}, reading: { metric: 'alt', value: 545.4, unit: 'm', ts: 7 }, out: [['sensors/dev/alt', '{"value":545.4,"unit":"m","ts":7}']] },
    { name: 'renames, scales, offsets and rounds', map: { t: { name: 'temperature', scale: 0.1, offset: -40, decimals: 1, unit: '°C' } }, reading: { metric: 't', value: 615 }, out: [['sensors/dev/temperature', '{"value":21.5,"unit":"°C","ts":1000}']] },
    { name: 'converts to int', map: { n: { type: 'int' } }, reading: { metric: 'n', value: 2.6 }, out: [['sensors/dev/n', '{"value":3,"ts":1000}']] },
    { name: 'converts numbers and words to bool', map: { r: { type: 'bool' } }, reading: { metric: 'r', value: 'on' }, out: [['sensors/dev/r', '{"value":true,"ts":1000}']] },
    { name: 'converts to string', map: { r: { type: 'string' } }, reading: { metric: 'r', value: 12 }, out: [['sensors/dev/r', '{"value":"12","ts":1000}']] },
    { name: 'drops a value that is not a number after a number conversion', map: { r: { type: 'number' } }, reading: { metric: 'r', value: 'abc' }, out: [] },
    { name: 'scales a number sent as text when the map converts it to a number', map: { t: { type: 'number', scale: 0.1, unit: '°C' } }, reading: { metric: 't', value: '216' }, out: [['sensors/dev/t', '{"value":21.6,"unit":"°C","ts":1000}']] },
    { name: 'scales a number sent as text before rounding it to an int', map: { n: { type: 'int', scale: 2, offset: 1 } }, reading: { metric: 'n', value: ' 7 ' }, out: [['sensors/dev/n', '{"value":15,"ts":1000}']] },
    { name: 'drops an empty text instead of publishing it as 0 after a number conversion', map: { r: { type: 'number' } }, reading: { metric: 'r', value: '' }, out: [] },
    { name: 'publishes a scaled value without floating-point noise (217 × 0.1 is 21.7)', map: { t: { scale: 0.1 } }, reading: { metric: 't', value: 217 }, out: [['sensors/dev/t', '{"value":21.7,"ts":1000}']] },
    { name: 'rounds to decimals before converting to a string', map: { t: { type: 'string', decimals: 1 } }, reading: { metric: 't', value: 21.46 }, out: [['sensors/dev/t', '{"value":"21.5","ts":1000}']] },
    { name: 'never publishes an ignored metric', map: { r: { ignore: true } }, reading: { metric: 'r', value: 1 }, out: [] },
    { name: 'keeps wildcards out of the topic', map: {}, reading: { metric: 'a+b#', value: 1 }, out: [['sensors/dev/a_b_', '{"value":1,"ts":1000}']] },
  ];
  for (const c of cases) {
    it(c.name, () => expect(one(new DeviceMapper(settings(c.map)), c.reading)).toEqual(c.out));
  }

  it('counts and reports each value dropped because it is not a number after a number conversion', () => {
    const told: [string, string][] = [];
    const m = new DeviceMapper(settings({ r: { type: 'number' }, n: { type: 'int' } }), (metric, detail) => told.push([metric, detail]));
    expect(m.map([{ metric: 'r', value: 'abc' }, { metric: 'n', value: '' }, { metric: 'r', value: '1' }, { metric: 'f', value: NaN }], 0)).toHaveLength(1);
    expect(m.invalid).toBe(3);
    // A float32 register holding NaN (a meter's "no value") is named NaN, not null.
    expect(told).toEqual([['r', '"abc" is not a number'], ['n', '"" is not a number'], ['f', 'NaN is not a number']]);
  });

  it('drops and reports a reading whose name gives no valid topic, and publishes the others', () => {
    const told: [string, string][] = [];
    const m = new DeviceMapper(settings({}, { topic: '{metric}' }), (metric, detail) => told.push([metric, detail]));
    const long = 'k'.repeat(65_536);
    const readings = JSON.parse(`{"":1,"\\ud800":2,"${long}":3,"ok":4}`) as Record<string, number>;
    const out = m.map(Object.entries(readings).map(([metric, value]) => ({ metric, value })), 0);
    expect(out.map((x) => x.topic)).toEqual(['ok']);
    expect(m.invalid).toBe(3);
    expect(told.map(([metric, detail]) => [metric.length, detail])).toEqual([
      [0, 'gives no valid topic (empty topic)'],
      [1, 'gives no valid topic (ill-formed UTF-8 in topic)'],
      [65_536, 'gives no valid topic (topic longer than 65535 bytes)'],
    ]);
  });

  it('publishes metrics named like Object properties (constructor, toString, __proto__) as any other', () => {
    const m = new DeviceMapper(settings({ t: { scale: 2 } }));
    const readings = JSON.parse('{"constructor":1,"toString":2,"__proto__":3,"t":4}') as Record<string, number>;
    const out = m.map(Object.entries(readings).map(([metric, value]) => ({ metric, value })), 0);
    expect(out.map((x) => [x.topic, JSON.parse(x.payload.toString()).value])).toEqual([
      ['sensors/dev/constructor', 1],
      ['sensors/dev/toString', 2],
      ['sensors/dev/__proto__', 3],
      ['sensors/dev/t', 8],
    ]);
    expect(m.invalid).toBe(0);
  });

  it('publishes plain payloads, with the QoS, retain flag and serial origin of the device', () => {
    const [msg] = new DeviceMapper(settings({}, { payload: 'plain' })).map([{ metric: 'x', value: false }], 0);
    expect(msg).toMatchObject({ topic: 'sensors/dev/x', qos: 1, retain: true, origin: { kind: 'serial', id: 'dev' } });
    expect(msg!.payload.toString()).toBe('false');
  });

  it('publishes only mapped metrics when asked', () => {
    const m = new DeviceMapper(settings({ a: {} }, { onlyMapped: true }));
    expect(m.map([{ metric: 'a', value: 1 }, { metric: 'b', value: 2 }], 0).map((x) => x.topic)).toEqual(['sensors/dev/a']);
  });

  it('applies min_interval, deadband and max_interval as a table over time', () => {
    const m = new DeviceMapper(settings({ v: { deadband: 1, min_interval: '10s', max_interval: '60s' } }));
    const seq: [number, number, boolean][] = [
      [0, 10, true], // first value
      [5_000, 20, false], // changed, but within min_interval
      [10_000, 10.5, false], // inside the deadband of the last published (10)
      [20_000, 11, true], // a change of 1
      [70_000, 11.2, false], // deadband holds, max_interval not reached (50 s since 11)
      [80_000, 11.2, true], // max_interval reached: heartbeat
    ];
    for (const [t, v, published] of seq) expect(m.map([{ metric: 'v', value: v }], t).length, `t=${t}`).toBe(published ? 1 : 0);
    expect(m.skipped).toBe(3);
  });

  it('remembers last values only for the metrics a deadband or interval applies to, however many names a device sends', () => {
    const m = new DeviceMapper(settings({ v: { deadband: 1 }, w: { scale: 2 } }));
    for (let i = 0; i < 10_000; i++) m.map([{ metric: `beacon-${i}`, value: i }, { metric: 'v', value: i }, { metric: 'w', value: i }], i);
    expect(m.remembered).toBe(1);
    expect(m.map([{ metric: 'v', value: 9_999.5 }, { metric: 'beacon-1', value: 1 }], 10_000)).toHaveLength(1); // v held back by its deadband
  });

  it('keeps the deadband of a renamed metric apart from an unmapped metric of the same name', () => {
    const m = new DeviceMapper(settings({ t: { name: 'temp', deadband: 1 } }));
    expect(m.map([{ metric: 't', value: 20 }], 0)).toHaveLength(1);
    expect(m.map([{ metric: 'temp', value: 30 }], 1)).toHaveLength(1);
    expect(m.map([{ metric: 't', value: 20.5 }], 2)).toHaveLength(0); // within 1 of the last t (20), not of the unmapped 30
  });

  it('with deadband 0 skips only equal values, booleans and strings included', () => {
    const m = new DeviceMapper(settings({ b: { deadband: 0 } }));
    expect([true, true, false, false, true].map((v, i) => m.map([{ metric: 'b', value: v }], i).length)).toEqual([1, 0, 1, 0, 1]);
  });

  it('renders topic templates and makes names topic-safe', () => {
    expect(renderTemplate('{driver}/{device}/{metric}/{other}', { device: 'd', metric: 'm', driver: 'x' })).toBe('x/d/m/{other}');
    expect(topicSafe('a\u0000b')).toBe('a_b');
  });
});
