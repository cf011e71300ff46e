/**
 * `outpost check` reports the problems of the password file and ACL a config names in the
 * same run as the config's own: with a wrong key in the config they were not read at all, so
 * the ACL's bad line came out only after the config was fixed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-auth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('outpost check with a config error and a bad ACL', () => {
  it('reports both in one run and exits 2', async () => {
    writeFileSync(join(tmp, 'acl'), 'user alice\ntopic readwrite sensors/#\nbogus line\n');
    const file = join(tmp, 'outpost.yaml');
    writeFileSync(file, 'auth:\n  acl_file: acl\nlog:\n  level: loud\n');
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err.split('\n').filter(Boolean)).toEqual([
      `${file}:4:10 log.level: must be one of "trace", "debug", "info", "warn", "error", "fatal", "silent", got "loud"`,
      expect.stringMatching(new RegExp(`^${join(tmp, 'acl').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: unknown keyword "bogus"`)),
    ]);
  });

  it('still says ok for a config and ACL without problems', async () => {
    writeFileSync(join(tmp, 'acl'), 'user alice\ntopic readwrite sensors/#\n');
    const file = join(tmp, 'good.yaml');
    writeFileSync(file, 'auth:\n  acl_file: acl\n');
    expect(await runCliCaptured(['check', file])).toEqual({ code: 0, out: `${file}: ok\n`, err: '' });
  });
});
