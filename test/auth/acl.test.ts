import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Acl } from '../../src/auth/acl.js';
import { filterRelation } from '../../src/auth/filter-relation.js';
import { loadAccessControl } from '../../src/auth/access-control.js';
import { authSchema } from '../../src/config/auth-schema.js';
import { isOutpostError } from '../../src/core/errors.js';
import { formatPasswordFile, hashPassword } from '../../src/auth/password-file.js';

function problem(text: string): string {
  try {
    Acl.parse(text, '/etc/outpost/acl');
  } catch (err) {
    if (isOutpostError(err, 'CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected the file to be refused');
}

describe('the relation of an ACL rule filter to a subscription filter', () => {
  it.each([
    ['sensors/#', 'sensors/+/temp', 'covers'],
    ['sensors/#', 'sensors', 'covers'],
    ['sensors/#', 'sensors/#', 'covers'],
    ['#', 'a/b', 'covers'],
    ['+/temp', 'boiler/temp', 'covers'],
    ['a/+/c', 'a/+/c', 'covers'],
    ['sensors/a/#', 'sensors/#', 'overlaps'],
    ['sensors/a', 'sensors/+', 'overlaps'],
    ['sensors/+/temp', 'sensors/#', 'overlaps'],
    ['a/b', 'a/#', 'overlaps'],
    ['a/+', '#', 'overlaps'],
    ['home/#', 'sensors/#', 'disjoint'],
    ['a/b', 'a/b/c', 'disjoint'],
    ['a/b/c', 'a/+', 'disjoint'],
    ['#', '$SYS/#', 'disjoint'],
    ['+/x', '$SYS/x', 'disjoint'],
    ['$SYS/#', '#', 'disjoint'],
    ['$SYS/#', '$SYS/broker/load', 'covers'],
  ] as const)('rule %s, filter %s: %s', (rule, filter, expected) => {
    expect(filterRelation(rule, filter)).toBe(expected);
  });
});

describe('the ACL file', () => {
  const acl = Acl.parse(
    [
      '# everyone',
      'read $SYS/outpost/#',
      'user alice',
      'readwrite home/#',
      'client dash-1',
      'read sensors/#',
      'anonymous',
      'read public/#',
      'all',
      'write devices/%u/#',
      'readwrite clients/%c/#',
      'serial boiler',
      'write sensors/boiler/#',
    ].join('\n'),
    'acl',
  );

  it('grants a user its section, the sections before any header, and its patterns', () => {
    const g = acl.grantsFor({ kind: 'mqtt', id: 'phone', user: 'alice' });
    expect(g.canWrite('home/door')).toBe(true);
    expect(g.canRead('$SYS/outpost/clients')).toBe(true);
    expect(g.canWrite('devices/alice/led')).toBe(true);
    expect(g.canWrite('devices/bob/led')).toBe(false);
    expect(g.canWrite('clients/phone/x')).toBe(true);
    expect(g.canRead('public/news')).toBe(false); // alice is not anonymous
    expect(g.canRead('sensors/x')).toBe(false);
  });

  it('denies by default and keeps read and write apart', () => {
    const g = acl.grantsFor({ kind: 'mqtt', id: 'dash-1' });
    expect(g.canRead('sensors/boiler/temp')).toBe(true);
    expect(g.canWrite('sensors/boiler/temp')).toBe(false);
    expect(g.canRead('public/x')).toBe(true); // anonymous section
    expect(g.canWrite('devices/x/y')).toBe(false); // %u never matches an anonymous client
    expect(g.canWrite('elsewhere')).toBe(false);
  });

  it('grades a subscription as wholly, partly or not readable', () => {
    const g = acl.grantsFor({ kind: 'mqtt', id: 'dash-1' });
    expect(g.readAccess('sensors/+/temp')).toBe('all');
    expect(g.readAccess('#')).toBe('some');
    expect(g.readAccess('home/#')).toBe('none');
  });

  it('does not substitute a name that would add levels or wildcards to a pattern', () => {
    const g = acl.grantsFor({ kind: 'mqtt', id: 'evil/#' });
    expect(g.canWrite('clients/evil/x')).toBe(false);
    expect(g.readAccess('clients/#')).toBe('none');
  });

  it("reads mosquitto acl_file lines with mosquitto's meaning", () => {
    const m = Acl.parse(['topic read public/#', '', 'user alice', 'topic home/#', 'topic write log/alice', 'pattern read devices/%u/#'].join('\n'), 'acl');
    const anon = m.grantsFor({ kind: 'mqtt', id: 'x' });
    expect(anon.canRead('public/a')).toBe(true); // topic lines before any user: anonymous clients
    const alice = m.grantsFor({ kind: 'mqtt', id: 'x', user: 'alice' });
    expect(alice.canRead('public/a')).toBe(false);
    expect(alice.canWrite('home/door') && alice.canRead('home/door')).toBe(true); // access defaults to readwrite
    expect(alice.canRead('log/alice')).toBe(false);
    expect(alice.canRead('devices/alice/x')).toBe(true);
    expect(m.grantsFor({ kind: 'mqtt', id: 'y', user: 'bob' }).canRead('devices/bob/x')).toBe(true); // patterns apply to everyone
  });

  it('checks other sources only when it has a section of their kind', () => {
    expect(acl.checks('serial')).toBe(true);
    expect(acl.checks('mqttsn')).toBe(false);
    expect(acl.grantsFor({ kind: 'mqttsn', id: 's1' }).unrestricted).toBe(true);
    const boiler = acl.grantsFor({ kind: 'serial', id: 'boiler' });
    expect(boiler.canWrite('sensors/boiler/temp')).toBe(true);
    expect(boiler.canWrite('sensors/other/temp')).toBe(false);
    expect(acl.grantsFor({ kind: 'serial', id: 'pump' }).canWrite('sensors/pump/rpm')).toBe(false);
  });

  it.each([
    ['write', '/etc/outpost/acl:1: "write" needs a topic filter, e.g. "write sensors/#"; see config/acl.example for the format'],
    ['read a/#/b', '/etc/outpost/acl:1: topic filter "a/#/b" is not valid: "#" must be the last level and alone; see config/acl.example for the format'],
    ['# ok\n\ngrant read a', '/etc/outpost/acl:3: unknown keyword "grant": expected read, write, readwrite (or mosquitto\'s topic, pattern), or a section (user, client, anonymous, all, mqttsn, serial, bridge); see config/acl.example for the format'],
    ['user a\ntopic deny a/#', '/etc/outpost/acl:2: "deny" rules are not supported: everything not granted is denied already; remove the line; see config/acl.example for the format'],
    ['user', '/etc/outpost/acl:1: "user" needs one name without spaces, e.g. "user sensor-1"; see config/acl.example for the format'],
    ['anonymous bob', '/etc/outpost/acl:1: "anonymous" takes no name, got "bob"; see config/acl.example for the format'],
  ])('refuses %j with file:line and what is wrong', (text, message) => {
    expect(problem(text)).toBe(message);
  });
});

describe('an ACL with several malformed lines', () => {
  it('reports every one, each with its line and what to do, not only the first', () => {
    const see = '; see config/acl.example for the format';
    const text = ['read sensors/#', 'user', 'read a/#/b', 'user alice', 'grant read x', 'write', 'readwrite home/#'].join('\n');
    expect(problem(text).split('\n')).toEqual([
      `/etc/outpost/acl:2: "user" needs one name without spaces, e.g. "user sensor-1"${see}`,
      `/etc/outpost/acl:3: topic filter "a/#/b" is not valid: "#" must be the last level and alone${see}`,
      `/etc/outpost/acl:5: unknown keyword "grant": expected read, write, readwrite (or mosquitto's topic, pattern), or a section (user, client, anonymous, all, mqttsn, serial, bridge)${see}`,
      `/etc/outpost/acl:6: "write" needs a topic filter, e.g. "write sensors/#"${see}`,
    ]);
  });
});

describe('loadAccessControl', () => {
  it('reads the files relative to the config file and checks passwords', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-ac-'));
    writeFileSync(join(dir, 'passwd'), formatPasswordFile([['alice', await hashPassword('pw', { N: 1024, r: 8, p: 1 })]]));
    writeFileSync(join(dir, 'acl'), 'user alice\nreadwrite home/#\n');
    const ac = await loadAccessControl(authSchema.parse({ password_file: 'passwd', acl_file: 'acl', failure_delay: '250ms' }), join(dir, 'outpost.yaml'));
    expect(ac.authenticates).toBe(true);
    expect(ac.failureDelayMs).toBe(250);
    expect(await ac.passwords!.verify('alice', 'pw')).toBe(true);
    expect(ac.grantsFor({ kind: 'mqtt', id: 'x', user: 'alice' }).canWrite('home/a')).toBe(true);
    expect(ac.grantsFor({ kind: 'system', id: 'outpost' }).canWrite('anything')).toBe(true);
  });

  it('stops with one sentence naming an ACL that cannot be read and where its format is shown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-ac-'));
    await expect(loadAccessControl(authSchema.parse({ acl_file: 'nope' }), join(dir, 'outpost.yaml'))).rejects.toThrow(
      `auth.acl_file ${join(dir, 'nope')} cannot be read (ENOENT); create it (config/acl.example shows the format) or fix the path`,
    );
  });

  it('stops with one sentence naming a password file that cannot be read and how to write one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-ac-'));
    await expect(loadAccessControl(authSchema.parse({ password_file: 'nope' }), join(dir, 'outpost.yaml'))).rejects.toThrow(
      `auth.password_file ${join(dir, 'nope')} cannot be read (ENOENT); create it (\`outpost passwd\` writes password files) or fix the path`,
    );
  });

  it('reports the problems of the password file and of the ACL together', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-ac-'));
    writeFileSync(join(dir, 'passwd'), 'alice:plaintext\nbob\n');
    writeFileSync(join(dir, 'acl'), 'user alice\nread\nwrite a/#/b\n');
    const err = await loadAccessControl(authSchema.parse({ password_file: 'passwd', acl_file: 'acl' }), join(dir, 'o.yaml')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isOutpostError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message.split('\n').map((l) => l.slice(0, l.indexOf(': ')))).toEqual([
      `${join(dir, 'passwd')}:1`,
      `${join(dir, 'passwd')}:2`,
      `${join(dir, 'acl')}:2`,
      `${join(dir, 'acl')}:3`,
    ]);
  });

  it('stops with file:line on a malformed password file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-ac-'));
    writeFileSync(join(dir, 'passwd'), '# users\nalice:plaintext\n');
    await expect(loadAccessControl(authSchema.parse({ password_file: 'passwd' }), join(dir, 'o.yaml'))).rejects.toThrow(`${join(dir, 'passwd')}:2: expected user:$scrypt$N$r$p$salt$hash`);
  });
});

describe('config/acl.example', () => {
  it('is a valid ACL file that grants what its comments say', async () => {
    const { readFileSync } = await import('node:fs');
    const acl = Acl.parse(readFileSync(new URL('../../config/acl.example', import.meta.url), 'utf8'), 'config/acl.example');
    expect(acl.grantsFor({ kind: 'mqtt', id: 'x', user: 'dashboard' }).readAccess('sensors/#')).toBe('all');
    expect(acl.grantsFor({ kind: 'mqtt', id: 'x', user: 'dashboard' }).canWrite('sensors/a')).toBe(false);
    expect(acl.grantsFor({ kind: 'mqtt', id: 'p1' }).canRead('public/news')).toBe(true);
    expect(acl.grantsFor({ kind: 'serial', id: 'boiler' }).canWrite('sensors/boiler/temp')).toBe(true);
    expect(acl.grantsFor({ kind: 'bridge', id: 'cloud' }).canWrite('cloud/cmd/reboot')).toBe(true);
    expect(acl.grantsFor({ kind: 'mqttsn', id: 'door-sensor-1' }).canWrite('sensors/door/open')).toBe(true);
  });
});
