import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig, loadConfig, parseConfigText } from '../../src/config/load.js';
import { editDistance } from '../../src/config/issues.js';
import { configProblems } from '../helpers/config-problems.js';

/** The error lines parseConfigText throws for `text` (fails the test if it accepts it). */
const problems = (text: string, file = 'config.yaml'): string[] => configProblems(text, file);

const tmp = mkdtempSync(join(tmpdir(), 'outpost-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('loading a valid config', () => {
  it('parses durations to milliseconds and sizes to bytes', () => {
    const config = parseConfigText(
      [
        'listeners:',
        '  - type: mqtt',
        '    host: 0.0.0.0',
        '    port: 0',
        'broker:',
        '  connect_timeout: 500ms',
        '  max_packet_size: 64KiB',
        '  max_keepalive: 60',
        '  max_queued_bytes: 2MB',
        '  max_session_expiry: 1h',
        'log: { level: debug, format: json }',
        'store: { dir: /var/lib/outpost }',
      ].join('\n'),
      'config.yaml',
    );
    expect(config.listeners).toEqual([{ type: 'mqtt', host: '0.0.0.0', port: 0 }]);
    expect(config.broker.connect_timeout).toBe(500);
    expect(config.broker.max_packet_size).toBe(65_536);
    expect(config.broker.max_keepalive).toBe(60_000);
    expect(config.broker.max_queued_bytes).toBe(2_000_000);
    expect(config.broker.max_session_expiry).toBe(3_600_000);
    expect(config.broker.receive_maximum).toBe(1000);
    expect(config.log).toEqual({ level: 'debug', format: 'json' });
    expect(config.store.dir).toBe('/var/lib/outpost');
  });

  it('fills every missing key with its default', () => {
    const config = parseConfigText('broker:\n  max_connections: 5\n', 'config.yaml');
    expect(config.broker.max_connections).toBe(5);
    expect(config.broker.connect_timeout).toBe(10_000);
    expect(config.listeners).toEqual([{ type: 'mqtt', host: '127.0.0.1', port: 1883 }]);
  });

  it('treats an empty file, or one with only comments, as all defaults', () => {
    expect(parseConfigText('', 'empty.yaml')).toEqual(defaultConfig());
    expect(parseConfigText('# nothing here\n', 'empty.yaml')).toEqual(defaultConfig());
  });

  it('gives the embedded default when no file is named', () => {
    const config = loadConfig();
    expect(config).toEqual({
      listeners: [{ type: 'mqtt', host: '127.0.0.1', port: 1883 }],
      auth: { allow_anonymous: false, failure_delay: 1000, max_concurrent_checks: 4 },
      broker: {
        connect_timeout: 10_000,
        max_packet_size: 1_048_576,
        max_keepalive: 0,
        receive_maximum: 1000,
        max_inflight: 100,
        max_queued_messages: 1000,
        max_queued_bytes: 16_777_216,
        topic_alias_maximum: 32,
        max_topic_levels: 64,
        retain_available: true,
        max_session_expiry: 604_800_000,
        allow_empty_client_id: true,
        max_connections: 0,
        max_connections_per_address: 0,
        connect_rate: 0,
        connect_burst: 10,
      },
      log: { level: 'info', format: 'auto' },
      store: { dir: './data', synchronous: 'full', commit_window: 2, commit_delay: 250, reserve: 16 * 1024 * 1024, persist_sessions: true, persist_retained: true },
      bridges: [],
      serial: { include: [], devices: [], state_prefix: '$SYS/outpost/serial', stats_interval: 60_000, reopen: { base: 1000, cap: 30_000 }, max_pending: 256 },
      metrics: { enabled: true, host: '127.0.0.1', port: 9100, stuck_after: 30_000, sys_interval: 30_000, status_interval: 10_000, status_history: 3_600_000 },
    });
  });

  it('returns a deeply frozen config', () => {
    const config = parseConfigText('listeners: [{ type: mqtt }]\n', 'config.yaml');
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.broker)).toBe(true);
    expect(Object.isFrozen(config.listeners[0])).toBe(true);
    expect(() => {
      (config.broker as { max_inflight: number }).max_inflight = 1;
    }).toThrow(TypeError);
  });

  it('reads a file from disk', () => {
    const file = join(tmp, 'ok.yaml');
    writeFileSync(file, 'listeners:\n  - type: mqtt\n    port: 0\n');
    expect(loadConfig(file).listeners[0]!.port).toBe(0);
  });
});

describe('reporting problems', () => {
  it('reports every problem at once, each at its line and column', () => {
    const text = [
      'listeners:', //                       1
      '  - type: mqtt', //                   2
      '    port: 70000', //                  3
      '  - host: 10.0.0.1', //               4  (type missing → the item map)
      'broker:', //                          5
      '  max_packet_size: lots', //          6
      '  connect_timeout: soon', //          7
      '  receive_maximum: 0', //             8
      '  retain_available: "yes"', //        9
      'log:', //                            10
      '  level: verbose', //                11
    ].join('\n');
    expect(problems(text)).toEqual([
      'config.yaml:3:11 listeners[0].port: must be at most 65535, got 70000',
      'config.yaml:4:5 listeners[1].type: missing required key "type"; add type: mqtt | mqtts | ws | wss',
      'config.yaml:6:20 broker.max_packet_size: expected a size such as 512KiB or 1MiB (a plain number is bytes), got "lots"',
      'config.yaml:7:20 broker.connect_timeout: expected a duration such as 500ms, 10s, 5m, 2h or 7d (a plain number is seconds), got "soon"',
      'config.yaml:8:20 broker.receive_maximum: must be at least 1, got 0',
      'config.yaml:9:21 broker.retain_available: expected true or false, got "yes"',
      'config.yaml:11:10 log.level: must be one of "trace", "debug", "info", "warn", "error", "fatal", "silent", got "verbose"',
    ]);
  });

  it('points at an unknown key and suggests the closest allowed one', () => {
    const text = 'listeners:\n  - type: mqtt\n    prot: 1883\nbroker:\n  max_packet_sise: 1MiB\nstroe:\n  dir: x\n';
    expect(problems(text)).toEqual([
      'config.yaml:3:5 listeners[0].prot: unknown key "prot"; did you mean "port"?',
      'config.yaml:5:3 broker.max_packet_sise: unknown key "max_packet_sise"; did you mean "max_packet_size"?',
      'config.yaml:6:1 stroe: unknown key "stroe"; did you mean "store"?',
    ]);
  });

  it('lists the allowed keys when no key is close to the unknown one', () => {
    expect(problems('log:\n  colour: true\n')).toEqual([
      'config.yaml:2:3 log.colour: unknown key "colour"; remove it or use one of: level, format',
    ]);
  });

  it('explains unit values that parse but are out of range or not whole seconds', () => {
    const text = 'broker:\n  max_packet_size: 32\n  max_keepalive: 20h\n  max_session_expiry: 1500ms\n';
    expect(problems(text)).toEqual([
      'config.yaml:2:20 broker.max_packet_size: must be between 64B and 268435455B, got 32',
      'config.yaml:3:18 broker.max_keepalive: must be at most 65535s, got "20h"',
      'config.yaml:4:23 broker.max_session_expiry: must be a whole number of seconds, got "1500ms"',
    ]);
  });

  it('points at the key of an empty value', () => {
    expect(problems('broker:\n  max_inflight:\n')).toEqual([
      'config.yaml:2:3 broker.max_inflight: expected a number, got an empty value',
    ]);
  });

  it('rejects an empty listener list and a top level that is not a map', () => {
    expect(problems('listeners: []\n')).toEqual(['config.yaml:1:12 listeners: must have at least 1 entry; add one']);
    expect(problems('- a\n- b\n')).toEqual(['config.yaml:1:1 top level: expected a map of keys, got a list']);
  });

  it('reports YAML syntax errors with their position and skips schema checks', () => {
    const lines = problems('broker:\n  max_inflight: 5\n max_connections: 2\nlog: [1, 2\n');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines[0]).toMatch(/^config\.yaml:3:1 invalid YAML: /);
    expect(problems('log: {}\nlog: {}\n')).toEqual(['config.yaml:2:1 invalid YAML: key log appears twice in one map; keep one of them']);
  });

  it('says "cannot read" with the file name and the OS reason when the file is missing', () => {
    const file = join(tmp, 'missing.yaml');
    expect(() => loadConfig(file)).toThrow(
      expect.objectContaining({
        code: 'CONFIG_UNREADABLE',
        message: `${file}: cannot read the config file (no such file or directory, ENOENT); check the path and its permissions`,
      }),
    );
  });

  it('reports problems of a file under the file name it was given', () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(file, 'store:\n  dir: ""\n');
    expect(() => loadConfig(file)).toThrow(`${file}:2:8 store.dir: must not be empty`);
  });
});

describe('editDistance', () => {
  it.each([
    ['port', 'port', 0],
    ['prot', 'port', 1],
    ['hots', 'host', 1],
    ['level', 'lvl', 2],
    ['', 'abc', 3],
  ])('between %s and %s is %d', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
  });
});
