/**
 * Certificate rotation on the bridge: renewed client certificate and CA files are read at the
 * next connection attempt, so a renewal (certbot, an internal CA) needs no restart of outpost.
 * Real Mosquitto over TLS (mTLS: the certificate CN becomes the user name it logs); the files
 * are replaced in place and a reconnect is forced by restarting the cloud broker.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_CN, issueClientCert, testCerts } from '../helpers/certs.js';
import { Mosquitto } from '../helpers/mosquitto.js';
import { startBridgedGateway, waitFor, type BridgedGateway } from '../helpers/bridge-gateway.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The bridge's own copies of its TLS files, as an operator keeps them in /etc/outpost/tls. */
function tlsDir() {
  const certs = testCerts();
  const dir = mkdtempSync(join(tmpdir(), 'outpost-rotation-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const files = { ca: join(dir, 'cloud-ca.crt'), cert: join(dir, 'site.crt'), key: join(dir, 'site.key') };
  copyFileSync(certs.ca.crt, files.ca);
  copyFileSync(certs.client.crt, files.cert);
  copyFileSync(certs.client.key, files.key);
  return { dir, files };
}

async function bridged(cloud: Mosquitto, files: { ca: string; cert: string; key: string }): Promise<BridgedGateway> {
  const gw = await startBridgedGateway({
    bridges: [{ name: 'cloud', url: cloud.tlsUrl, client_id: 'rotating-site', ...files, rules: [{ pattern: 'sensors/#' }], backoff: { base: '100ms', cap: '300ms' } }],
  });
  cleanups.push(() => gw.dispose());
  return gw;
}

const connectedAs = (cloud: Mosquitto, user: string) => new RegExp(`New client connected from \\S+ as rotating-site \\([^)]*u'${user}'\\)`).test(cloud.log());

describe('bridge certificate rotation without a restart', () => {
  it('presents a renewed client certificate on the next connection', async () => {
    const cloud = new Mosquitto({ requireCertificate: true });
    cleanups.push(() => cloud.dispose());
    await cloud.start();
    const { dir, files } = tlsDir();
    const gw = await bridged(cloud, files);
    await waitFor(() => gw.gateway.bridges[0]?.linkState === 'up', 'the bridge to come up', 10_000);
    expect(connectedAs(cloud, CLIENT_CN)).toBe(true);

    // Renewal: a new key and certificate (another CN, so the cloud can tell) replace the files.
    const renewed = issueClientCert(dir, 'renewed', 'site-17-renewed');
    copyFileSync(renewed.crt, files.cert);
    copyFileSync(renewed.key, files.key);
    await cloud.restart(); // forces a reconnect
    await waitFor(() => connectedAs(cloud, 'site-17-renewed'), 'a connection with the renewed certificate', 10_000);
    await waitFor(() => gw.gateway.bridges[0]?.linkState === 'up', 'the bridge to come back up', 10_000);
  });

  it('trusts a new CA once its file is replaced, and not before', async () => {
    const old = new Mosquitto();
    cleanups.push(() => old.dispose());
    await old.start();
    const { files } = tlsDir();
    const gw = await bridged(old, files);
    await waitFor(() => gw.gateway.bridges[0]?.linkState === 'up', 'the bridge to come up', 10_000);
    await old.stop();

    // The cloud moves to a certificate from another CA, on the same address.
    const moved = new Mosquitto({ serverCert: 'rogue' });
    cleanups.push(() => moved.dispose());
    moved.plainPort = old.plainPort;
    moved.tlsPort = old.tlsPort;
    await moved.start();
    const refusals = () => gw.logs().filter((l) => /TLS certificate of 127\.0\.0\.1 is not trusted \(\w+\): check bridges\[\]\.ca/.test(JSON.stringify(l))).length;
    await waitFor(() => refusals() > 0, 'a refused handshake with the old CA', 10_000);
    expect(gw.gateway.bridges[0]?.linkState).toBe('down');

    copyFileSync(testCerts().otherCa.crt, files.ca);
    await waitFor(() => gw.gateway.bridges[0]?.linkState === 'up', 'the bridge to trust the new CA', 10_000);
  });
});
