/**
 * An ACL `user` section for a certificate identity with spaces in its CN ("Pump Station 3",
 * use_identity_as_username) and a `client` section for a client id with spaces: the rest of
 * the line is the name, as in Mosquitto. Such lines were refused ("needs one name without
 * spaces"), so a device known by such a CN could be granted nothing of its own. A rule
 * written on the section line is still refused, not taken as part of a name.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Acl } from '../../src/auth/acl.js';
import { parseConfigText } from '../../src/config/load.js';
import { isOutpostError } from '../../src/core/errors.js';
import { Gateway } from '../../src/gateway.js';
import { issueClientCert, testCerts } from '../helpers/certs.js';
import { within } from '../helpers/gateway-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'outpost-acl-spaces-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problem(text: string): string {
  try {
    Acl.parse(text, 'acl');
  } catch (err) {
    if (isOutpostError(err, 'CONFIG_INVALID')) return err.message;
    throw err;
  }
  return '';
}

describe('an ACL section name with spaces', () => {
  it('names a user (a certificate CN) or a client id with the rest of the line', () => {
    const acl = Acl.parse('user Pump Station 3\nreadwrite pumps/3/#\nclient Node RED 1 \nread sensors/#\n', 'acl');
    expect(acl.grantsFor({ kind: 'mqtt', id: 'x', user: 'Pump Station 3' }).canWrite('pumps/3/valve')).toBe(true);
    expect(acl.grantsFor({ kind: 'mqtt', id: 'x', user: 'Pump' }).canWrite('pumps/3/valve')).toBe(false);
    expect(acl.grantsFor({ kind: 'mqtt', id: 'Node RED 1' }).canRead('sensors/a')).toBe(true);
    expect(acl.grantsFor({ kind: 'mqtt', id: 'Node' }).canRead('sensors/a')).toBe(false);
  });

  it('is refused when a rule was written on the section line', () => {
    expect(problem('user alice readwrite home/#\n')).toBe('acl:1: "user alice readwrite home/#": a rule goes on its own line below the section line; see config/acl.example for the format');
    expect(problem('client dash topic read sensors/+\n')).toMatch(/^acl:1: "client dash topic read sensors\/\+": a rule goes on its own line/);
  });

  it('is still refused for MQTT-SN clients, serial devices and bridges, whose names have none', () => {
    expect(problem('serial boiler room\n')).toBe('acl:1: "serial" needs one name without spaces, e.g. "serial sensor-1"; see config/acl.example for the format');
  });
});

describe('an mqtts client whose certificate CN has spaces', () => {
  it('gets what its ACL user section grants, and nothing else (MQTT.js over mTLS)', async () => {
    const certs = testCerts();
    const pump = issueClientCert(dir, 'pump-3', 'Pump Station 3');
    const acl = join(dir, 'acl');
    writeFileSync(acl, 'user Pump Station 3\nreadwrite pumps/3/#\n', { mode: 0o600 });
    const text = [
      'listeners:',
      `  - { type: mqtts, host: 127.0.0.1, port: 0, cert: ${certs.server.crt}, key: ${certs.server.key}, ca: ${certs.ca.crt}, require_certificate: true, use_identity_as_username: true }`,
      `store: { dir: ${JSON.stringify(join(dir, 'data'))} }`,
      `auth: { acl_file: ${acl} }`,
    ].join('\n');
    const gateway = new Gateway(parseConfigText(text, join(dir, 'outpost.yaml')), { log: pino({ level: 'silent' }) });
    await gateway.start(new AbortController().signal);
    const { port } = gateway.addresses[0]!;
    const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, {
      ca: certs.pem(certs.ca.crt),
      cert: certs.pem(pump.crt),
      key: certs.pem(pump.key),
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    try {
      expect((await client.subscribeAsync('pumps/3/#')).map((g) => g.qos)).toEqual([0]);
      await expect(client.subscribeAsync('pumps/4/#')).rejects.toThrow('Not authorized'); // SUBACK 0x87
      const got = new Promise<string>((resolve) => client.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
      await client.publishAsync('pumps/3/valve', 'open', { qos: 1 });
      expect(await within(got, 3000, 'the pump message')).toBe('pumps/3/valve open');
    } finally {
      await client.endAsync();
      await within(gateway.stop(), 5000, 'the gateway to stop');
    }
  });
});
