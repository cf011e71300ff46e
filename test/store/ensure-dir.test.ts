/** ensureDir: every missing level made once; a level that cannot be made fails at once (no endless retry). */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDir } from '../../src/store/ensure-dir.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-ensure-dir-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('ensureDir', () => {
  it('creates every missing level, and does nothing for a directory that exists', () => {
    const dir = join(tmp, 'a', 'b', 'c');
    ensureDir(dir);
    expect(existsSync(dir)).toBe(true);
    ensureDir(dir);
    expect(existsSync(dir)).toBe(true);
  });

  it('throws the first failure on a filesystem that cannot hold the directory (where mkdir recursive never returns)', () => {
    expect(() => ensureDir('/proc/outpost-ensure-dir/x')).toThrow(/ENOENT.*mkdir '\/proc\/outpost-ensure-dir'/);
  });
});
