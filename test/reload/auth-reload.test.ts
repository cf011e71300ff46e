/**
 * The password file and the ACL across a live reload: a real gateway and MQTT.js clients. The
 * files are read again on every reload, a client connected before stays connected, and a
 * malformed file rejects the reload with its file:line while the running rules stay.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { formatPasswordFile, hashPassword } from '../../src/auth/password-file.js';
import { parseConfigText } from '../../src/config/load.js';
import { startGateway, type RunningGateway } from '../helpers/gateway-fixture.js';

let gw: RunningGateway | undefined;
let dir: string | undefined;
afterEach(async () => {
  await gw?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  gw = dir = undefined;
});

const FAST = { N: 1024, r: 8, p: 1 };

async function users(file: string, list: [string, string][]): Promise<void> {
  writeFileSync(file, formatPasswordFile(await Promise.all(list.map(async ([u, p]) => [u, await hashPassword(p, FAST)] as [string, string]))));
}

/** Resolves with the CONNACK reason code (0 = accepted); the client is kept open when accepted. */
async function tryConnect(url: string, username: string, password: string): Promise<{ code: number; client?: mqtt.MqttClient }> {
  try {
    const client = await mqtt.connectAsync(url, { username, password, protocolVersion: 5, reconnectPeriod: 0, clientId: `${username}-${Math.random().toString(16).slice(2, 8)}` });
    return { code: 0, client };
  } catch (err) {
    return { code: (err as { code?: number }).code ?? -1 };
  }
}

describe('auth reload', () => {
  it('reads the password file again: a removed user is refused and her connected client disconnected, an added one admitted', async () => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-auth-reload-'));
    const configFile = join(dir, 'outpost.yaml');
    const passwd = join(dir, 'passwd');
    await users(passwd, [['alice', 'a-pw']]);
    gw = await startGateway('', `auth: { password_file: ${JSON.stringify(passwd)}, failure_delay: 50ms }`);
    // The reload reads the same file through a path relative to the config file.
    const prev = parseConfigText('listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nauth: { password_file: passwd, failure_delay: 50ms }', configFile);
    const step = gw.gateway.reloadSteps(configFile).find((s) => s.name === 'auth')!;
    await step.check!(prev, prev);
    await step.apply(prev, prev);

    const alice = await tryConnect(gw.url, 'alice', 'a-pw');
    expect(alice.code).toBe(0);
    expect((await tryConnect(gw.url, 'bob', 'b-pw')).code).toBe(0x86);

    await users(passwd, [['bob', 'b-pw']]);
    await step.check!(prev, prev);
    expect(await step.apply(prev, prev)).toEqual({ changes: ['password file read again'] });
    const bob = await tryConnect(gw.url, 'bob', 'b-pw');
    expect(bob.code).toBe(0);
    expect((await tryConnect(gw.url, 'alice', 'a-pw')).code).toBe(0x86);
    // Deleted from the file: her open connection is closed too, as mosquitto does on reload.
    for (let i = 0; i < 100 && alice.client!.connected; i++) await new Promise((r) => setTimeout(r, 10));
    expect(alice.client!.connected).toBe(false);

    // A malformed file: the reload is refused with file:line, bob is still admitted.
    writeFileSync(passwd, 'bob:not-a-hash\n');
    await expect(step.check!(prev, prev)).rejects.toThrow(`${passwd}:1:`);
    const again = await tryConnect(gw.url, 'bob', 'b-pw');
    expect(again.code).toBe(0);
    for (const c of [alice.client, bob.client, again.client]) await c?.endAsync(true);

    // Dropping a file or changing the check settings is said, each on its own line.
    const acl = join(dir, 'acl');
    writeFileSync(acl, 'topic readwrite #\n');
    const withAcl = parseConfigText('listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nauth: { acl_file: acl, failure_delay: 2s }', configFile);
    await step.check!(withAcl, prev);
    expect(await step.apply(withAcl, prev)).toEqual({
      changes: [`password file passwd no longer used: passwords are not checked any more`, 'ACL file acl now used', 'auth.failure_delay 50 ms → 2000 ms'],
    });
  });
});
