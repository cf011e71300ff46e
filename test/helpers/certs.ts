/**
 * Test certificates, generated once per test process with the system `openssl` (3.0 on
 * Debian bookworm) into a temporary directory that is removed at exit:
 *
 *   ca          the trusted CA (the bridge's `ca`)
 *   server      localhost / 127.0.0.1 (SAN), signed by ca, valid for a year
 *   expired     the same names, signed by ca, valid only in January 2020
 *   client      CN = CLIENT_CN, signed by ca, for mTLS (mosquitto's use_identity_as_username)
 *   otherCa     a second CA nobody trusts, and `rogue`, a server cert signed by it
 *
 * openssl 3.0 `x509 -req` has no -not_before/-not_after (3.4 added them) and faketime is
 * not installed, so the expired certificate is issued by `openssl ca` with -startdate/-enddate.
 * EC P-256 keys keep generation to a few hundred milliseconds.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CLIENT_CN = 'site-17';

export interface CertFiles {
  /** Path of the PEM file. */
  crt: string;
  key: string;
}

export interface TestCerts {
  dir: string;
  ca: CertFiles;
  server: CertFiles;
  expired: CertFiles;
  client: CertFiles;
  otherCa: CertFiles;
  rogue: CertFiles;
  /** Reads a PEM file (for UpstreamTls, which takes contents). */
  pem(path: string): Buffer;
}

let cached: TestCerts | undefined;

export function testCerts(): TestCerts {
  cached ??= generate();
  return cached;
}

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString() || e.message}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string, cn: string): CertFiles {
  const files = { crt: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, '[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  openssl(dir, ['req', '-x509', ...EC, '-keyout', files.key, '-out', files.crt, '-days', '3650', '-subj', `/CN=${cn}`, '-config', ext, '-extensions', 'v3']);
  return files;
}

function request(dir: string, name: string, cn: string): { csr: string; key: string } {
  const csr = join(dir, `${name}.csr`);
  const key = join(dir, `${name}.key`);
  openssl(dir, ['req', '-new', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  return { csr, key };
}

function sign(dir: string, ca: CertFiles, name: string, cn: string, ext: string): CertFiles {
  const { csr, key } = request(dir, name, cn);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, ext);
  const crt = join(dir, `${name}.crt`);
  openssl(dir, ['x509', '-req', '-in', csr, '-CA', ca.crt, '-CAkey', ca.key, '-CAcreateserial', '-days', '365', '-sha256', '-extfile', extFile, '-out', crt]);
  return { crt, key };
}

const SERVER_EXT = 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n';
const CLIENT_EXT = 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n';

/** A server certificate valid only in January 2020, through `openssl ca` (see the header). */
function signExpired(dir: string, ca: CertFiles): CertFiles {
  const { csr, key } = request(dir, 'expired', 'localhost');
  const caDir = join(dir, 'ca-db');
  mkdirSync(join(caDir, 'newcerts'), { recursive: true });
  writeFileSync(join(caDir, 'index.txt'), '');
  writeFileSync(join(caDir, 'serial'), '1000\n');
  const cnf = join(caDir, 'ca.cnf');
  writeFileSync(
    cnf,
    [
      '[ca]', 'default_ca = test',
      '[test]', `dir = ${caDir}`, 'database = $dir/index.txt', 'new_certs_dir = $dir/newcerts', 'serial = $dir/serial',
      'default_md = sha256', 'policy = any', 'unique_subject = no', 'copy_extensions = none',
      '[any]', 'commonName = supplied', '',
    ].join('\n'),
  );
  const extFile = join(dir, 'expired.ext');
  writeFileSync(extFile, SERVER_EXT);
  const crt = join(dir, 'expired.crt');
  openssl(dir, [
    'ca', '-batch', '-notext', '-config', cnf, '-cert', ca.crt, '-keyfile', ca.key, '-in', csr, '-out', crt,
    '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-extfile', extFile,
  ]);
  return { crt, key };
}

function generate(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-certs-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const ca = makeCa(dir, 'ca', 'outpost test CA');
  const otherCa = makeCa(dir, 'other-ca', 'untrusted test CA');
  return {
    dir,
    ca,
    server: sign(dir, ca, 'server', 'localhost', SERVER_EXT),
    expired: signExpired(dir, ca),
    client: sign(dir, ca, 'client', CLIENT_CN, CLIENT_EXT),
    otherCa,
    rogue: sign(dir, otherCa, 'rogue', 'localhost', SERVER_EXT),
    pem: (path) => readFileSync(path),
  };
}

/** A new client certificate for `cn`, signed by the test CA (a renewal, for rotation tests). */
export function issueClientCert(dir: string, name: string, cn: string): CertFiles {
  return sign(dir, testCerts().ca, name, cn, CLIENT_EXT);
}
