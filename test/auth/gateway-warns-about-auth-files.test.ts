/**
 * A running gateway logs the auth file warnings (a password file every user of the host may
 * read) at warn level when it starts and again at each reload, and serves the file as before.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { formatPasswordFile, hashPassword } from '../../src/auth/password-file.js';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { within } from '../helpers/gateway-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'outpost-gw-auth-warn-'));
chmodSync(dir, 0o755); // mkdtemp gives 0700, which no one else could pass: the files would be out of reach whatever their mode
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a gateway with a password file every user may read', () => {
  it('warns at start and at each reload', async () => {
    const passwd = join(dir, 'passwd');
    writeFileSync(passwd, formatPasswordFile([['alice', await hashPassword('pw', { N: 1024, r: 8, p: 1 })]]));
    chmodSync(passwd, 0o644);
    const configFile = join(dir, 'outpost.yaml');
    const text = ['listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]', `store: { dir: ${JSON.stringify(join(dir, 'data'))} }`, 'auth: { password_file: passwd }'].join('\n');
    const config = parseConfigText(text, configFile);
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
    const gateway = new Gateway(config, { log, configFile });
    await gateway.start(new AbortController().signal);
    try {
      const warned = () => lines.filter((l) => l.level === 40 && l.msg.startsWith(`auth.password_file ${passwd} (mode 0644,`));
      expect(warned()).toHaveLength(1);
      expect(warned()[0]!.msg).toContain(`every user of this host may read it, so they could copy the password hashes and guess them offline; chmod 0640 ${passwd}`);
      const step = gateway.reloadSteps(configFile).find((s) => s.name === 'auth')!;
      await step.check!(config, config);
      await step.apply(config, config);
      expect(warned()).toHaveLength(2);
    } finally {
      await within(gateway.stop(), 5000, 'the gateway to stop');
    }
  });
});
