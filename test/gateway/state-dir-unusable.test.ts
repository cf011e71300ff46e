/**
 * A store.dir that cannot hold the gateway's files: start-up says why in the operator's
 * terms, not only SQLite's SQLITE_CANTOPEN.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { silentLog } from '../helpers/broker-harness.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-state-unusable-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a store.dir that cannot be used', () => {
  it('that is a file stops start-up saying it is a file, not a directory', async () => {
    const file = join(tmp, 'data');
    writeFileSync(file, 'not a directory');
    const config = parseConfigText(
      `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nmetrics: { enabled: false }\nstore: { dir: ${JSON.stringify(file)} }\n`,
      't.yaml',
    );
    const gateway = new Gateway(config, { log: silentLog });
    await expect(gateway.start(new AbortController().signal)).rejects.toThrow(
      `cannot lock the state directory ${file} (ENOTDIR: it is a file, not a directory); fix store.dir or its permissions`,
    );
    await gateway.stop();
  });
});
