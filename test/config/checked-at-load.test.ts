/**
 * What `outpost check` must catch that start-up would otherwise trip over later: TLS files
 * that cannot be read, bridge patterns that are no topic filter, a driver option another
 * driver has. Each problem is one line at its position, all of them at once.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, parseConfigText } from '../../src/config/load.js';
import { testCerts } from '../helpers/certs.js';
import { problemsOf } from '../helpers/config-problems.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-checked-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


describe('TLS files named by the config', () => {
  const file = join(tmp, 'tls.yaml');
  const real = join(tmp, 'present.pem');
  writeFileSync(real, 'not checked for content here');
  const lines = [
      'listeners:',
      '  - { type: mqtt, port: 1883 }',
      `  - { type: mqtts, port: 8883, cert: ${real}, key: /nonexistent/server.key }`,
      'bridges:',
      '  - name: cloud',
      '    url: mqtts://cloud.example:8883',
      '    ca: /nonexistent/ca.crt',
      '    cert: missing-client.crt',
      `    key: ${real}`,
      '    rules: [{ pattern: "site/#" }]',
  ];
  writeFileSync(file, lines.join('\n'));
  /** line:column of the first `text` in the file. */
  const at = (text: string): string => {
    const i = lines.findIndex((l) => l.includes(text));
    return `${i + 1}:${lines[i]!.indexOf(text) + 1}`;
  };

  it('are each reported at the key that names them when the config is loaded for use', () => {
    expect(problemsOf(() => loadConfig(file, { checkFiles: true }))).toEqual([
      `${file}:${at('/nonexistent/server.key')} listeners[1].key: cannot read /nonexistent/server.key (ENOENT); fix the path or its permissions`,
      `${file}:${at('/nonexistent/ca.crt')} bridges[0].ca: cannot read /nonexistent/ca.crt (ENOENT); fix the path or its permissions`,
      `${file}:${at('missing-client.crt')} bridges[0].cert: cannot read ${join(tmp, 'missing-client.crt')} (ENOENT); fix the path or its permissions`,
    ]);
  });

  it('are not read when the config is only parsed for its shape', () => {
    expect(() => loadConfig(file)).not.toThrow();
  });

  it("are found from the config file's directory when relative, whatever the working directory", () => {
    const dir = join(tmp, 'etc');
    mkdirSync(join(dir, 'tls'), { recursive: true });
    // The listener's pair must also work together and the bridge CA hold a certificate (files.ts), so real ones.
    const certs = testCerts();
    copyFileSync(certs.server.crt, join(dir, 'tls', 'server.crt'));
    copyFileSync(certs.server.key, join(dir, 'tls', 'server.key'));
    copyFileSync(certs.ca.crt, join(dir, 'tls', 'ca.crt'));
    const conf = join(dir, 'outpost.yaml');
    writeFileSync(conf, 'listeners:\n  - { type: mqtts, port: 8883, cert: tls/server.crt, key: tls/server.key }\nbridges:\n  - { name: c, url: "mqtts://c:8883", ca: tls/ca.crt, rules: [{ pattern: "#" }] }\n');
    expect(process.cwd()).not.toBe(dir);
    const config = loadConfig(conf, { checkFiles: true });
    expect(config.listeners[0]).toMatchObject({ cert: join(dir, 'tls/server.crt'), key: join(dir, 'tls/server.key') });
    expect(config.bridges[0]!.ca).toBe(join(dir, 'tls/ca.crt'));
  });
});

describe('bridge rule patterns', () => {
  it('that are no topic filter, with or without their prefixes, are each reported at their line', () => {
    const text = [
      'bridges:',
      '  - name: cloud',
      '    url: mqtts://cloud.example:8883',
      '    rules:',
      '      - { pattern: "a/#/b" }',
      '      - { pattern: "x+/y" }',
      '      - { pattern: "#", remote_prefix: "sites" }',
      '      - { pattern: "fine/+" }',
    ].join('\n');
    expect(problemsOf(() => parseConfigText(text, 'c.yaml'))).toEqual([
      'c.yaml:5:20 bridges[0].rules[0].pattern: not a valid topic filter ("#" must be the last level and alone); fix the pattern, got "a/#/b"',
      'c.yaml:6:20 bridges[0].rules[1].pattern: not a valid topic filter ("+" must occupy a whole level); fix the pattern, got "x+/y"',
      'c.yaml:7:20 bridges[0].rules[2].pattern: not a valid topic filter after remote_prefix "sites" ("#" must be the last level and alone); fix the pattern or remote_prefix, got "#"',
    ]);
  });
});

describe('bridge rule prefixes', () => {
  it('holding a wildcard are reported at their line, as a remote "a/+/" would make every outgoing topic name invalid', () => {
    const text = [
      'bridges:',
      '  - name: cloud',
      '    url: mqtts://cloud.example:8883',
      '    rules:',
      '      - { pattern: "x/#", remote_prefix: "a/+/" }',
      '      - { pattern: "y/#", local_prefix: "+/" }',
    ].join('\n');
    expect(problemsOf(() => parseConfigText(text, 'c.yaml'))).toEqual([
      'c.yaml:5:42 bridges[0].rules[0].remote_prefix: a prefix is literal text and cannot hold a wildcard (+ or #); put wildcards in the pattern, got "a/+/"',
      'c.yaml:6:41 bridges[0].rules[1].local_prefix: a prefix is literal text and cannot hold a wildcard (+ or #); put wildcards in the pattern, got "+/"',
    ]);
  });
});

describe('bridge identity', () => {
  it('as properties is refused for a 3.1.1 bridge, which has no user properties to carry it', () => {
    const text = ['bridges:', '  - { name: a, url: "mqtts://cloud.example", protocol: 4, identity: properties, rules: [{ pattern: "s/#" }] }'].join('\n');
    expect(problemsOf(() => parseConfigText(text, 'c.yaml'))).toEqual([
      'c.yaml:2:69 bridges[0].identity: properties needs protocol 5 (MQTT 3.1.1 has no user properties); use envelope or none, got "properties"',
    ]);
  });
});

describe('bridge credentials', () => {
  it('refuse a password without a username, which no CONNECT can carry (the gateway stopped at the first attempt)', () => {
    const text = ['bridges:', '  - { name: a, url: "mqtts://cloud.example", password: hunter2, rules: [{ pattern: "s/#" }] }'].join('\n');
    const problems = problemsOf(() => parseConfigText(text, 'c.yaml'));
    expect(problems).toEqual(['c.yaml:2:56 bridges[0].password: is set without a username; MQTT sends no password without a user name: set username too, got a string']);
  });
});

describe('bridge state topics', () => {
  it('that are no topic name, given or made from the client id, are refused: as the Will topic they made every CONNECT fail', () => {
    const text = [
      'bridges:',
      '  - { name: a, url: "mqtts://cloud.example", state_topic: "sites/#", rules: [{ pattern: "s/#" }] }',
      '  - { name: b, url: "mqtts://cloud.example", state_topic: "", rules: [{ pattern: "s/#" }] }',
      '  - { name: c, url: "mqtts://cloud.example", client_id: "site+1", rules: [{ pattern: "s/#" }] }',
    ].join('\n');
    expect(problemsOf(() => parseConfigText(text, 'c.yaml'))).toEqual([
      'c.yaml:2:59 bridges[0].state_topic: is not a valid topic name (wildcard in topic name); it is the bridge\'s Will topic, so the cloud would refuse every CONNECT, got "sites/#"',
      'c.yaml:3:59 bridges[1].state_topic: is not a valid topic name (empty topic); it is the bridge\'s Will topic, so the cloud would refuse every CONNECT, got ""',
      'c.yaml:4:57 bridges[2].client_id: makes the default state topic "outpost/site+1/state", the bridge\'s Will topic, invalid (wildcard in topic name), so the cloud would refuse every CONNECT; change client_id or set state_topic, got "site+1"',
    ]);
  });
});

describe('bridge client ids', () => {
  it('used twice on one broker are reported, as the two bridges would take each other\'s session over on every connect', () => {
    const text = [
      'bridges:',
      '  - { name: a, url: "mqtts://cloud.example", client_id: site-17, rules: [{ pattern: "s/#" }] }',
      '  - { name: b, url: "mqtts://cloud.example:8883", client_id: site-17, rules: [{ pattern: "t/#" }] }',
      '  - { name: c, url: "mqtts://other.example", client_id: site-17, rules: [{ pattern: "u/#" }] }',
      '  - { name: d, url: "mqtts://cloud.example", client_id: outpost-e, rules: [{ pattern: "v/#" }] }',
      '  - { name: e, url: "mqtts://cloud.example", rules: [{ pattern: "w/#" }] }',
    ].join('\n');
    expect(problemsOf(() => parseConfigText(text, 'c.yaml'))).toEqual([
      'c.yaml:3:62 bridges[1].client_id: bridges "a" and "b" both connect to cloud.example:8883 as client id "site-17"; the broker keeps only one of them connected (each connect takes the other\'s session over); give each its own client_id, got "site-17"',
      'c.yaml:6:13 bridges[4].name: bridges "d" and "e" both connect to cloud.example:8883 as client id "outpost-e"; the broker keeps only one of them connected (each connect takes the other\'s session over); give each its own client_id, got "e"',
    ]);
  });
});

describe('serial devices', () => {
  const device = (extra: string) => `serial:\n  devices:\n    - { id: d1, port: /dev/ttyS9, driver: line-json, ${extra} }\n`;

  it("name an unknown option against the device's own driver only, and never suggest the key itself", () => {
    const [line] = problemsOf(() => parseConfigText(device('options: { registers: [] }'), 'c.yaml'));
    expect(line).toMatch(/^c\.yaml:3:\d+ serial\.devices\[0\]\.options\.registers: unknown key "registers"/);
    expect(line).not.toContain('did you mean "registers"');
    expect(line).toContain('max_line');
    expect(line).not.toContain('slave_id');
  });

  it('say what a QoS and a port may be', () => {
    expect(problemsOf(() => parseConfigText(device('qos: 3'), 'c.yaml'))[0]).toMatch(/qos: must be 0, 1 or 2, got 3$/);
    const port = problemsOf(() => parseConfigText('serial:\n  devices:\n    - { id: d1, port: 5, driver: line-json }\n', 'c.yaml'))[0];
    expect(port).toMatch(/port: expected a device path such as \/dev\/ttyUSB0 or a USB match/);
  });
});

describe('ports', () => {
  it('taken twice by TCP listeners or the metrics listener are reported at the second listener (the metrics listener counts first), port 0 excepted', () => {
    const text = [
      'listeners:',
      '  - { type: mqtt, host: 127.0.0.1, port: 31942 }',
      '  - { type: ws, host: 127.0.0.1, port: 31942 }',
      '  - { type: mqtt, host: 0.0.0.0, port: 31942 }',
      '  - { type: mqtt, port: 0 }',
      '  - { type: ws, port: 0 }',
      '  - { type: mqtt, host: 127.0.0.2, port: 31943 }',
      'metrics: { port: 31943, host: 127.0.0.1 }',
    ].join('\n');
    expect(problemsOf(() => parseConfigText(text, 'c.yaml'))).toEqual([
      'c.yaml:3:40 listeners[1].port: port 31942 on 127.0.0.1 is also taken by listeners[0] on 127.0.0.1; give each listener its own port',
      'c.yaml:4:40 listeners[2].port: port 31942 on 0.0.0.0 is also taken by listeners[0] on 127.0.0.1; give each listener its own port',
    ]);
    // At the listener's line: metrics.port is the default here, written nowhere in the file.
    expect(problemsOf(() => parseConfigText('listeners:\n  - { type: mqtt, port: 9100 }\n', 'c.yaml'))).toEqual([
      'c.yaml:2:25 listeners[0].port: port 9100 on 127.0.0.1 is also taken by the metrics listener (metrics.port) on 127.0.0.1; give each listener its own port',
    ]);
  });
});
