import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';
import { parseConfigText } from '../../src/config/load.js';
import { problemsOf } from '../helpers/config-problems.js';

/** parseConfigText with included files served from memory (paths relative to /etc/outpost). */
function parse(text: string, files: Record<string, string> = {}) {
  return parseConfigText(text, '/etc/outpost/outpost.yaml', (path) => {
    const body = files[path];
    if (body === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return body;
  });
}

const problems = (text: string, files: Record<string, string> = {}): string[] => problemsOf(() => parse(text, files));

const device = (extra: string[] = [], driver = 'line-json') => ['serial:', '  devices:', '    - id: boiler', '      port: /dev/ttyUSB0', `      driver: ${driver}`, ...extra].join('\n');

describe('serial device maps in the config', () => {
  it('fills every device default and the driver option defaults', () => {
    const d = parse(device()).serial.devices[0]!;
    expect(d).toEqual({
      id: 'boiler',
      port: '/dev/ttyUSB0',
      driver: 'line-json',
      baud: 9600,
      data_bits: 8,
      parity: 'none',
      stop_bits: 1,
      topic: 'sensors/{device}/{metric}',
      payload: 'json',
      qos: 0,
      retain: false,
      only_mapped: false,
      metrics: {},
      options: { max_line: 1024, line_ending: 'lf', separator: '.', strings: false },
    });
  });

  it('takes a USB match as the port and metric mappings with durations', () => {
    const d = parse(
      device(['      metrics:', '        temp: { name: temperature, scale: 0.1, unit: "°C", deadband: 0.2, min_interval: 10s, max_interval: 5m }']).replace(
        'port: /dev/ttyUSB0',
        'port: { vendor_id: "0403", product_id: "6001", serial_number: A50285BI }',
      ),
    ).serial.devices[0]!;
    expect(d.port).toEqual({ vendor_id: '0403', product_id: '6001', serial_number: 'A50285BI' });
    expect(d.metrics['temp']).toEqual({ name: 'temperature', scale: 0.1, offset: 0, unit: '°C', deadband: 0.2, min_interval: 10_000, max_interval: 300_000, ignore: false });
  });

  it('names an unknown driver at its line and column with the drivers that exist', () => {
    expect(problems(device([], 'line-jsno'))).toEqual([
      '/etc/outpost/outpost.yaml:5:15 serial.devices[0].driver: unknown driver; use one of: line-json, line-kv, nmea, modbus-rtu, regex, got "line-jsno"',
    ]);
  });

  it("validates options with the driver's own schema, at the option's position", () => {
    expect(problems(device(['      options:', '        pattern: "(?<t>\\\\d+"', '        max_lien: 10'], 'regex'))).toEqual([
      '/etc/outpost/outpost.yaml:7:18 serial.devices[0].options.pattern: not a valid regular expression: /(?<t>\\d+/: Unterminated group, got "(?<t>\\\\d+"',
      '/etc/outpost/outpost.yaml:8:9 serial.devices[0].options.max_lien: unknown key "max_lien"; did you mean "max_line"?',
    ]);
    expect(problems(device([], 'regex'))).toEqual(['/etc/outpost/outpost.yaml:3:7 serial.devices[0].options.pattern: missing required key "pattern"; add pattern']);
  });

  it('checks topic templates: known placeholders, {metric} present, no wildcards', () => {
    expect(problems(device(['      topic: "sensors/{devcie}/#"', '      command_topic: "cmd/+"']))).toEqual([
      '/etc/outpost/outpost.yaml:6:14 serial.devices[0].topic: unknown placeholder {devcie}; use {device}, {metric}, {driver}, got "sensors/{devcie}/#"',
      '/etc/outpost/outpost.yaml:6:14 serial.devices[0].topic: the template needs {metric}, or every metric lands on one topic, got "sensors/{devcie}/#"',
      '/etc/outpost/outpost.yaml:6:14 serial.devices[0].topic: not a valid topic: wildcard in topic name, got "sensors/{devcie}/#"',
      '/etc/outpost/outpost.yaml:7:22 serial.devices[0].command_topic: not a valid topic: wildcard in topic name, got "cmd/+"',
    ]);
  });

  it('rejects two metrics published under one name, and a max_interval that min_interval makes unreachable', () => {
    expect(problems(device(['      metrics:', '        t: { min_interval: 10s, max_interval: 5s }', '        u: { name: t }', '        v: { name: w }', '        w: {}', '        x: { name: w, ignore: true }']))).toEqual([
      '/etc/outpost/outpost.yaml:7:47 serial.devices[0].metrics.t.max_interval: must be longer than min_interval, or the heartbeat can never come; raise max_interval or lower min_interval, got "5s"',
      '/etc/outpost/outpost.yaml:8:20 serial.devices[0].metrics.u.name: metric "t" is already published as "t"; give one of them another name, got "t"',
      '/etc/outpost/outpost.yaml:10:12 serial.devices[0].metrics.w: metric "v" is already published as "w"; give one of them another name',
    ]);
  });

  it('rejects a metric map entry that names no metric of a driver whose metrics are known (a register map, NMEA)', () => {
    const modbus = ['      options: { slave_id: 1, registers: [{ name: temperature, address: 0 }] }', '      metrics:', '        temp: { scale: 0.1 }', '        temperature: { unit: °C }'];
    expect(problems(device(modbus, 'modbus-rtu'))).toEqual([
      '/etc/outpost/outpost.yaml:8:15 serial.devices[0].metrics.temp: this modbus-rtu device has no metric "temp"; name one of: temperature',
    ]);
    expect(problems(device(['      options: { sentences: [VTG] }', '      metrics: { speed_kmh: { decimals: 0 }, latitude: { deadband: 0.001 } }'], 'nmea'))).toEqual([
      '/etc/outpost/outpost.yaml:7:56 serial.devices[0].metrics.latitude: this nmea device has no metric "latitude"; name one of: course, speed_kn, speed_kmh',
    ]);
    expect(problems(device(['      options: { pattern: "T:(?<temp>\\\\S+)" }', '      metrics: { tmp: { scale: 0.1 } }'], 'regex'))).toEqual([
      '/etc/outpost/outpost.yaml:7:23 serial.devices[0].metrics.tmp: this regex device has no metric "tmp"; name one of: temp',
    ]);
    // line-json metrics are whatever keys the device sends: any name goes.
    expect(() => parse(device(['      metrics: { anything: { scale: 2 } }']))).not.toThrow();
  });

  it('rejects parity mark/space and 1.5 stop bits, which a Linux serial port cannot be set to, instead of retrying the open forever', () => {
    expect(problems(device(['      parity: mark', '      stop_bits: 1.5']))).toEqual([
      '/etc/outpost/outpost.yaml:6:15 serial.devices[0].parity: parity mark cannot be set on Linux serial ports; use none, even or odd (for mark parity, none with stop_bits: 2 sends the same bits), got "mark"',
      '/etc/outpost/outpost.yaml:7:18 serial.devices[0].stop_bits: 1.5 stop bits cannot be set on Linux serial ports; use 1 or 2 (2 suits a device that wants 1.5), got 1.5',
    ]);
  });

  it('rejects a duplicate id and two line devices on one port', () => {
    const text = [device(), '    - id: boiler', '      port: /dev/ttyUSB0', '      driver: nmea'].join('\n');
    expect(problems(text)).toEqual([
      '/etc/outpost/outpost.yaml:6:11 serial.devices[1].id: device id "boiler" is used twice; ids must be unique, got "boiler"',
      '/etc/outpost/outpost.yaml:7:13 serial.devices[1].port: port is already used by device "boiler"; only modbus-rtu devices of one driver may share a port, got "/dev/ttyUSB0"',
    ]);
  });
});

describe('included device map files', () => {
  const main = ['serial:', '  include: [devices/boiler-room.yaml, gps.yaml]', ...device().split('\n').slice(1)].join('\n');

  it('appends the devices of every included file, relative to the config file', () => {
    const config = parse(main, {
      '/etc/outpost/devices/boiler-room.yaml': 'devices:\n  - { id: pump, port: /dev/ttyUSB1, driver: line-kv }\n',
      '/etc/outpost/gps.yaml': 'devices:\n  - { id: gps, port: /dev/ttyACM0, driver: nmea, baud: 4800 }\n',
    });
    expect(config.serial.devices.map((d) => d.id)).toEqual(['boiler', 'pump', 'gps']);
  });

  it('reports a problem inside an included file at that file (named from where the main file is), line and column, with its own key path', () => {
    expect(
      problems(main, {
        '/etc/outpost/devices/boiler-room.yaml': ['devices:', '  - id: pump', '    port: /dev/ttyUSB1', '    driver: line-kv', '    options:', '      assign: "=>"'].join('\n'),
        '/etc/outpost/gps.yaml': ['devices:', '  - id: gps', '    port: /dev/ttyACM0', '    driver: nmae', '    baud: fast'].join('\n'),
      }),
    ).toEqual([
      '/etc/outpost/devices/boiler-room.yaml:6:15 devices[0].options.assign: must be one of "=", ":", got "=>"',
      '/etc/outpost/gps.yaml:4:13 devices[0].driver: unknown driver; use one of: line-json, line-kv, nmea, modbus-rtu, regex, got "nmae"',
    ]);
    // Checks across devices run once every device is valid on its own (zod refines last).
    expect(
      problems(main, {
        '/etc/outpost/devices/boiler-room.yaml': 'devices: []\n',
        '/etc/outpost/gps.yaml': ['devices:', '  - id: boiler', '    port: /dev/ttyACM0', '    driver: nmea'].join('\n'),
      }),
    ).toEqual(['/etc/outpost/gps.yaml:2:9 devices[0].id: device id "boiler" is used twice; ids must be unique, got "boiler"']);
  });

  it('names an included file from the working directory when the main file was given relative to it', () => {
    const read = (path: string): string => {
      if (path.endsWith('/site/maps/a.yaml')) return 'devices:\n  - { id: a, port: /dev/ttyS1, driver: nmae }\n';
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    };
    expect(() => parseConfigText('serial:\n  include: [maps/a.yaml]\n', '../site/outpost.yaml', read)).toThrow(/^\.\.\/site\/maps\/a\.yaml:2:\d+ devices\[0\]\.driver: unknown driver/);
  });

  it('reports a missing file at its include entry, and a file that is not a device map', () => {
    expect(problems(main, { '/etc/outpost/gps.yaml': 'device:\n  - {}\n' })).toEqual([
      '/etc/outpost/outpost.yaml:2:13 serial.include[0]: cannot read device map file /etc/outpost/devices/boiler-room.yaml (ENOENT); check the path (relative to this file)',
      '/etc/outpost/gps.yaml:1:1 device: unknown key "device"; a device map file holds only: devices',
    ]);
    expect(problems(main, { '/etc/outpost/devices/boiler-room.yaml': 'devices: [', '/etc/outpost/gps.yaml': '- a\n' })[0]).toMatch(/^\/etc\/outpost\/devices\/boiler-room\.yaml:1:\d+ invalid YAML/);
  });

  it('reports a YAML error in an included file at its line, and a duplicate key by name', () => {
    expect(
      problems(main, {
        '/etc/outpost/devices/boiler-room.yaml': ['devices:', '  - id: pump', '    port: /dev/ttyUSB1', '    driver: line-kv', '    port: /dev/ttyUSB2'].join('\n'),
        '/etc/outpost/gps.yaml': 'devices: []\n',
      }),
    ).toEqual(['/etc/outpost/devices/boiler-room.yaml:5:5 invalid YAML: key port appears twice in one map; keep one of them']);
  });

  it('accepts an empty device map file', () => {
    expect(parse(main, { '/etc/outpost/devices/boiler-room.yaml': '# nothing yet\n', '/etc/outpost/gps.yaml': 'devices: []\n' }).serial.devices).toHaveLength(1);
  });
});

describe('outpost check with device maps', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'outpost-serial-check-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  async function check(file: string): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await runCli(['check', file], {
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
      process: { onSignal: () => () => undefined, onCrash: () => () => undefined, exitNow: () => undefined },
    });
    return { code, out, err };
  }

  it('stops with exit code 2 and the included file position when a device names an unknown driver', async () => {
    mkdirSync(join(tmp, 'maps'), { recursive: true });
    writeFileSync(join(tmp, 'outpost.yaml'), 'serial:\n  include: [maps/site.yaml]\n');
    writeFileSync(join(tmp, 'maps/site.yaml'), 'devices:\n  - id: meter\n    port: /dev/ttyUSB0\n    driver: modbus-tcp\n');
    const r = await check(join(tmp, 'outpost.yaml'));
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${join(tmp, 'maps/site.yaml')}:4:13 devices[0].driver: unknown driver; use one of: line-json, line-kv, nmea, modbus-rtu, regex, got "modbus-tcp"\n`);
  });

  it('makes `outpost run` stop before starting anything, with the same sentence', async () => {
    let err = '';
    const code = await runCli(['run', '--config', join(tmp, 'outpost.yaml')], {
      stdout: () => undefined,
      stderr: (t) => (err += t),
      process: { onSignal: () => () => undefined, onCrash: () => () => undefined, exitNow: () => undefined },
      createGateway: () => {
        throw new Error('the gateway must not be created');
      },
    });
    expect(code).toBe(2);
    expect(err.startsWith(`${join(tmp, 'maps/site.yaml')}:4:13 devices[0].driver: unknown driver`)).toBe(true);
  });

  it('accepts a valid file with includes', async () => {
    writeFileSync(join(tmp, 'maps/site.yaml'), 'devices:\n  - id: meter\n    port: /dev/ttyUSB0\n    driver: line-kv\n');
    const r = await check(join(tmp, 'outpost.yaml'));
    expect(r).toMatchObject({ code: 0, out: `${join(tmp, 'outpost.yaml')}: ok\n` });
  });
});
