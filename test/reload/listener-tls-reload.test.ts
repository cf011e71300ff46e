/**
 * `outpost run` in-process: a renewed listener certificate applies on SIGHUP (`systemctl
 * reload outpost`, a certbot deploy hook), as with mosquitto, for mqtts and wss; the file
 * poll alone left up to its interval with the old certificate, and the reload said
 * "nothing to apply". Clients connected before keep their connections.
 */
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { testCerts } from '../helpers/certs.js';
import { runInProcess } from '../helpers/run-in-process.js';

const certs = testCerts();
const tmp = mkdtempSync(join(tmpdir(), 'outpost-tls-reload-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A TLS handshake trusting the test CA: 'ok', or why the client refused the certificate. */
function attempt(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: certs.pem(certs.ca.crt) }, () => (resolve('ok'), s.end()));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('SIGHUP and listener certificates', () => {
  it('makes new mqtts and wss connections get a renewed certificate at once, and keeps the clients already connected', async () => {
    const crt = join(tmp, 'server.crt');
    const key = join(tmp, 'server.key');
    copyFileSync(certs.expired.crt, crt);
    copyFileSync(certs.expired.key, key);
    const file = join(tmp, 'run.yaml');
    writeFileSync(
      file,
      [
        'listeners:',
        `  - { type: mqtts, host: 127.0.0.1, port: 0, cert: ${crt}, key: ${key} }`,
        `  - { type: wss, host: 127.0.0.1, port: 0, cert: ${crt}, key: ${key} }`,
        'log: { format: json }',
        `store: { dir: ${JSON.stringify(join(tmp, 'data'))} }`,
        'metrics: { host: 127.0.0.1, port: 0 }',
        '',
      ].join('\n'),
    );
    const run = await runInProcess(file);
    const { waitLog } = run;
    const [mqtts, wss] = run.listenerPorts as [number, number];
    expect(await attempt(mqtts)).toBe('CERT_HAS_EXPIRED');
    expect(await attempt(wss)).toBe('CERT_HAS_EXPIRED');
    const before = await mqtt.connectAsync(`mqtts://127.0.0.1:${mqtts}`, { rejectUnauthorized: false, reconnectPeriod: 0 });
    const watcher = await mqtt.connectAsync(`wss://127.0.0.1:${wss}/mqtt`, { rejectUnauthorized: false, reconnectPeriod: 0 });
    const got: string[] = [];
    watcher.on('message', (_t, p) => got.push(p.toString()));
    await watcher.subscribeAsync('renewal', { qos: 1 });

    // As renewal tools do: new files beside the old ones, renamed over them, then the reload.
    copyFileSync(certs.server.key, `${key}.new`);
    copyFileSync(certs.server.crt, `${crt}.new`);
    renameSync(`${key}.new`, key);
    renameSync(`${crt}.new`, crt);
    run.reload();
    expect(await waitLog('config reloaded')).toMatchObject({ changes: ['listeners[0] tls certificate reloaded', 'listeners[1] tls certificate reloaded'] });
    expect(await attempt(mqtts)).toBe('ok');
    expect(await attempt(wss)).toBe('ok');

    await before.publishAsync('renewal', 'kept', { qos: 1 });
    await expect.poll(() => got, { timeout: 2000 }).toEqual(['kept']);
    await before.endAsync();
    await watcher.endAsync();
    run.signal('SIGTERM');
    expect(await run.done).toBe(0);
  });
});
