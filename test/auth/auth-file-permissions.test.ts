/**
 * A password file or ACL that others than outpost and root may read or change is warned
 * about (one sentence: file, mode, what to do) each time it is read, at start and at every
 * reload, and still used: Mosquitto 2.0 warns about world-readable password and ACL files,
 * and outpost said nothing. The installed layout (root:outpost 0640, outpost in that group)
 * is not warned about. Who outpost runs as is injected, so the tests do not depend on the
 * user running them; the files are real, with real modes and owners.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAccessControl } from '../../src/auth/access-control.js';
import { fileAccessWarning, type ProcessIdentity } from '../../src/auth/file-permissions.js';
import { formatPasswordFile, hashPassword } from '../../src/auth/password-file.js';
import { authSchema } from '../../src/config/auth-schema.js';

const dir = mkdtempSync(join(tmpdir(), 'outpost-auth-perm-'));
chmodSync(dir, 0o755); // mkdtemp gives 0700, which no one else could pass: the files would be out of reach whatever their mode
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** A password file and an ACL with these modes, owned by the user running the test; `outpost` is who reads them. */
async function files(passwdMode: number, aclMode: number, aclText = 'user alice\nreadwrite home/#\n'): Promise<{ passwd: string; acl: string; outpost: ProcessIdentity; config: string }> {
  const sub = join(dir, String(n++));
  const passwd = `${sub}-passwd`;
  const acl = `${sub}-acl`;
  writeFileSync(passwd, formatPasswordFile([['alice', await hashPassword('pw', { N: 1024, r: 8, p: 1 })]]));
  writeFileSync(acl, aclText);
  chmodSync(passwd, passwdMode);
  chmodSync(acl, aclMode);
  const st = statSync(passwd);
  // outpost runs as the files' owner, in their group: the installed layout's rights.
  return { passwd, acl, config: join(dir, 'outpost.yaml'), outpost: { uid: st.uid, gids: [st.gid] } };
}

const load = (f: { passwd: string; acl: string; config: string }, outpost: ProcessIdentity) =>
  loadAccessControl(authSchema.parse({ password_file: f.passwd, acl_file: f.acl }), f.config, { identity: outpost });

describe('a password file or ACL others may read', () => {
  it('is warned about in one sentence naming the file, its mode and the chmod and chown to run, and still used', async () => {
    const f = await files(0o644, 0o600);
    const ac = await load(f, f.outpost);
    const st = statSync(f.passwd);
    expect(ac.warnings).toEqual([
      `auth.password_file ${f.passwd} (mode 0644, owner ${st.uid}:${st.gid}): every user of this host may read it, so they could copy the password hashes and guess them offline; ` +
        `chmod 0640 ${f.passwd} (0600 if outpost owns it) and chown root:GROUP ${f.passwd}, GROUP being the group outpost runs as (installed: chown root:outpost ${f.passwd})`,
    ]);
    expect(await ac.passwords!.verify('alice', 'pw')).toBe(true);
  });

  it('is warned about again each time the files are read, as at every reload', async () => {
    const f = await files(0o604, 0o600);
    expect((await load(f, f.outpost)).warnings).toHaveLength(1);
    expect((await load(f, f.outpost)).warnings).toHaveLength(1);
    chmodSync(f.passwd, 0o640); // fixed: the next reload says nothing
    expect((await load(f, f.outpost)).warnings).toEqual([]);
  });

  it('is not warned about in the installed layout: 0640 in a group outpost runs in, or 0600', async () => {
    const f = await files(0o640, 0o600);
    expect((await load(f, f.outpost)).warnings).toEqual([]);
  });

  it('is warned about when its group may read it but outpost does not run in that group', async () => {
    const f = await files(0o640, 0o640, 'client dashboard-1\nread home/#\n');
    const gid = statSync(f.passwd).gid;
    const ac = await load(f, { uid: f.outpost.uid, gids: [gid + 1] });
    expect(ac.warnings).toHaveLength(2);
    expect(ac.warnings[0]).toContain(`: group ${gid}, which outpost does not run in, may read it, so they could copy the password hashes`);
    expect(ac.warnings[1]).toMatch(new RegExp(`^auth\\.acl_file ${f.acl} \\(mode 0640, .*: group ${gid}, which outpost does not run in, may read it, so they could learn the client ids it grants rights to \\(claiming one is all a client needs\\); chmod 0640 `));
  });

  it('is warned about when others or its group may write the ACL', async () => {
    const f = await files(0o600, 0o666, 'mqttsn sensor-17\nwrite sensors/#\n');
    const [w] = (await load(f, f.outpost)).warnings;
    expect(w).toMatch(/^auth\.acl_file .* \(mode 0666, owner \d+:\d+\): every user of this host may read and write it; its group may write it, so they could learn the client ids it grants rights to .* or change who may do what; chmod 0640 /);
  });

  it('is an ACL without client id sections others may read but not write: not warned about (topic and user names are no secret)', async () => {
    const f = await files(0o600, 0o644);
    expect((await load(f, f.outpost)).warnings).toEqual([]);
    chmodSync(f.acl, 0o646);
    expect((await load(f, f.outpost)).warnings).toEqual([expect.stringMatching(/^auth\.acl_file .* \(mode 0646, .*\): every user of this host may write it, so they could change who may do what; chmod 0640 /)]);
  });

  it('is warned about when it belongs to another user than root and outpost', async () => {
    const f = await files(0o600, 0o600);
    let outpost: ProcessIdentity;
    if (process.getuid?.() === 0) {
      chownSync(f.passwd, 4321, statSync(f.passwd).gid); // root may give it away
      outpost = { uid: 0, gids: f.outpost.gids };
    } else {
      outpost = { uid: f.outpost.uid + 1, gids: f.outpost.gids }; // outpost is another user than the one writing it
    }
    const owner = statSync(f.passwd).uid;
    const [w] = (await load(f, outpost)).warnings;
    expect(w).toContain(`: it belongs to user ${owner}, neither root nor the user outpost runs as (${outpost.uid}), who may change it, so they could add a user or change a password; chmod 0640 `);
  });
});

/** Files as `files` makes them (ACL 0600), the password file moved into a new directory `name` of the test dir. */
async function passwdInSubdir(name: string, passwdMode: number) {
  const sub = join(dir, name);
  mkdirSync(sub);
  const f = await files(passwdMode, 0o600);
  const passwd = join(sub, 'passwd');
  renameSync(f.passwd, passwd);
  return { sub, f, passwd, g: { ...f, passwd } };
}

describe('a password file others may read in a directory they may not pass', () => {
  it('is not warned about: /etc/outpost is root:outpost 0750 when installed, so a 0644 file an editor left there is out of their reach', async () => {
    const { sub, passwd, g } = await passwdInSubdir('etc-outpost', 0o644);
    chmodSync(sub, 0o750);
    expect((await load(g, g.outpost)).warnings).toEqual([]);
    chmodSync(sub, 0o751); // others may pass it again
    expect((await load(g, g.outpost)).warnings).toEqual([expect.stringContaining(`auth.password_file ${passwd} (mode 0644,`)]);
  });

  it('is warned about for a group outpost is not in when the directory lets that group pass', async () => {
    const { sub, f, passwd, g } = await passwdInSubdir('shared', 0o640);
    const gid = statSync(passwd).gid; // the directory's group too
    const outsider = { uid: f.outpost.uid, gids: [gid + 1] };
    chmodSync(sub, 0o750);
    expect((await load(g, outsider)).warnings).toEqual([expect.stringContaining(`: group ${gid}, which outpost does not run in, may read it`)]);
    chmodSync(sub, 0o700);
    expect((await load(g, outsider)).warnings).toEqual([]);
  });
});

describe('the file access decision', () => {
  const me = { uid: 998, gids: [998] };
  it.each([
    [0o600, 998, 998, undefined],
    [0o640, 0, 998, undefined],
    [0o440, 0, 998, undefined],
    [0o600, 0, 0, undefined],
    [0o644, 0, 998, 'every user of this host may read it'],
    [0o601, 0, 998, undefined],
    [0o602, 0, 998, 'every user of this host may write it'],
    [0o650, 0, 998, undefined],
    [0o640, 0, 100, 'group 100, which outpost does not run in, may read it'],
    [0o660, 0, 998, 'its group may write it'],
    [0o600, 1000, 998, 'it belongs to user 1000, neither root nor the user outpost runs as (998), who may change it'],
  ])('mode %s owner %i:%i: %s', (mode, uid, gid, what) => {
    const w = fileAccessWarning('auth.password_file', '/etc/outpost/passwd', { mode: 0o100000 | mode, uid, gid }, me);
    if (what === undefined) expect(w).toBeUndefined();
    else expect(w).toContain(`: ${what}, so they could`);
  });

  it.each([
    ['0755 and 0755', 'every user of this host may read it'],
    ['0750 and 0755', undefined],
    ['0755 and 0700', undefined],
  ])('counts a 0644 file out of reach of others when a directory above it (modes %s) does not let them pass: %s', (modes, what) => {
    const dirs = modes.split(' and ').map((m) => ({ mode: 0o40000 | parseInt(m, 8), uid: 0, gid: 998 }));
    const w = fileAccessWarning('auth.password_file', '/etc/outpost/passwd', { mode: 0o100644, uid: 0, gid: 998 }, me, true, dirs);
    if (what === undefined) expect(w).toBeUndefined();
    else expect(w).toContain(`: ${what}, so they could`);
  });

  it('says nothing where there are no POSIX ids', () => {
    expect(fileAccessWarning('auth.acl_file', 'acl', { mode: 0o100666, uid: 5, gid: 5 }, undefined)).toBeUndefined();
  });
});
