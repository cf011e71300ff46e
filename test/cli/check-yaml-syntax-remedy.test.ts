/**
 * A YAML syntax error is one line with its position, what is wrong and what to do: the yaml
 * package's own message said only what is wrong ("Tabs are not allowed as indentation").
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-yaml-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function check(text: string): Promise<{ code: number; out: string; err: string; file: string }> {
  const file = join(tmp, 'outpost.yaml');
  writeFileSync(file, text);
  return { ...(await runCliCaptured(['check', file])), file };
}

describe('outpost check on a YAML syntax error', () => {
  it('tells an operator who indented with a tab to indent with spaces', async () => {
    const r = await check('listeners:\n\t- type: mqtt\n');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${r.file}:2:1 invalid YAML: Tabs are not allowed as indentation; indent with spaces, not tabs\n`);
  });

  it('tells an operator whose value holds ": " to quote it', async () => {
    const r = await check('bridges:\n  - name: cloud\n    client_id: a: b\n');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${r.file}:3:16 invalid YAML: Nested mappings are not allowed in compact mappings; put quotes around a value that holds ": "\n`);
  });

  it('tells an operator who left out the space after a colon to write key: value', async () => {
    const r = await check('bridges:\n  - name: cloud\n    url: mqtts://cloud.example:8883\n    client_id:site-17\n');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${r.file}:4:5 invalid YAML: Implicit map keys need to be followed by map values; write "key: value" with a space after the colon\n`);
    const before = await check('bridges:\n  - name: cloud\n    client_id:site-17\n    username: site\n');
    expect(before.err).toBe(`${before.file}:3:5 invalid YAML: Implicit keys need to be on a single line; write "key: value" on one line with a space after the colon, or quotes around a value that spans lines\n`);
  });

  it('tells an operator whose value starts with a reserved character to quote it', async () => {
    const r = await check('bridges:\n  - name: cloud\n    client_id: @home\n');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${r.file}:3:16 invalid YAML: Plain value cannot start with reserved character @; put quotes around the value\n`);
  });
});
