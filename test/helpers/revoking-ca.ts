/**
 * A CA that can revoke, for CRL tests: an `openssl ca` database in its own temporary
 * directory (removed at exit), client certificates issued by it, `openssl ca -revoke` and
 * `openssl ca -gencrl` as an operator runs them when a field device is lost.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertFiles } from './certs.js';

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${e.stderr?.toString() || e.message}`);
  }
}

export class RevokingCa {
  readonly dir: string;
  readonly ca: CertFiles;
  private readonly cnf: string;

  constructor(cn = 'outpost device CA') {
    this.dir = mkdtempSync(join(tmpdir(), 'outpost-revoking-ca-'));
    const dir = this.dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const db = join(dir, 'db');
    mkdirSync(join(db, 'newcerts'), { recursive: true });
    writeFileSync(join(db, 'index.txt'), '');
    writeFileSync(join(db, 'serial'), '1000\n');
    writeFileSync(join(db, 'crlnumber'), '1000\n');
    this.cnf = join(dir, 'ca.cnf');
    writeFileSync(
      this.cnf,
      [
        '[ca]', 'default_ca = test',
        '[test]', `dir = ${db}`, 'database = $dir/index.txt', 'new_certs_dir = $dir/newcerts', 'serial = $dir/serial',
        'crlnumber = $dir/crlnumber', 'default_md = sha256', 'default_days = 365', 'default_crl_days = 30',
        'policy = any', 'unique_subject = no', 'copy_extensions = none',
        '[any]', 'commonName = supplied',
        '[v3ca]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash', '',
      ].join('\n'),
    );
    this.ca = { crt: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
    openssl(dir, ['req', '-x509', ...EC, '-keyout', this.ca.key, '-out', this.ca.crt, '-days', '3650', '-subj', `/CN=${cn}`, '-config', this.cnf, '-extensions', 'v3ca']);
  }

  /** A client certificate (CN = `cn`, valid from now for `days`) issued through the CA database, so that it can be revoked. */
  issueClient(name: string, cn = name, days = 365): CertFiles {
    const csr = join(this.dir, `${name}.csr`);
    const files = { crt: join(this.dir, `${name}.crt`), key: join(this.dir, `${name}.key`) };
    openssl(this.dir, ['req', '-new', ...EC, '-keyout', files.key, '-out', csr, '-subj', `/CN=${cn}`]);
    const ext = join(this.dir, `${name}.ext`);
    writeFileSync(ext, 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
    openssl(this.dir, ['ca', '-batch', '-notext', '-config', this.cnf, '-cert', this.ca.crt, '-keyfile', this.ca.key, '-in', csr, '-out', files.crt, '-extfile', ext, '-days', String(days)]);
    return files;
  }

  /** `openssl ca -revoke`: marks the certificate revoked in the database (the next CRL lists it). */
  revoke(cert: CertFiles): void {
    openssl(this.dir, ['ca', '-config', this.cnf, '-cert', this.ca.crt, '-keyfile', this.ca.key, '-revoke', cert.crt, '-crl_reason', 'keyCompromise']);
  }

  /** `openssl ca -gencrl` into `file`, written beside it and renamed over it (as a deploy tool does). */
  writeCrl(file: string): void {
    const next = `${file}.new`;
    openssl(this.dir, ['ca', '-config', this.cnf, '-cert', this.ca.crt, '-keyfile', this.ca.key, '-gencrl', '-out', next]);
    renameSync(next, file);
  }
}
