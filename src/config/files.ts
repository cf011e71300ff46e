/**
 * The files a config names that start-up reads: the TLS certificates, keys and CAs of
 * listeners and bridges. A config loaded for use (`outpost check`, `outpost run`, a reload)
 * has them read once here, so a wrong path is reported with every other problem, at its
 * line, with exit code 2, instead of stopping start-up later with the first one alone.
 * A listener's certificate, key and CA are also tried together, as its start does, so a key
 * that does not match its certificate or a file that is not PEM fails `outpost check` too,
 * not only the start; and its ca must hold a certificate (node takes one without any, then
 * refuses every client), and its crl must hold CRLs node reads. A bridge's client
 * certificate and key are tried together the same way, and its ca must hold a certificate:
 * otherwise start-up went on and every connection attempt failed (a TLS error thrown at each
 * reconnect, or every cloud certificate refused).
 * Relative paths are taken from the config file's directory (resolveTlsPaths), like
 * auth.password_file, auth.acl_file and serial.include: under systemd the working directory
 * is the state directory, not /etc/outpost.
 *
 * parseConfigText stays pure: this is the probe loadConfig hands it (a config parsed only
 * for its shape, like the example files in the tests, names files of another machine).
 */
import { resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { PEM_FIX, readBoundedFile, readFailure } from './read-file.js';
import type { PathKey } from './issues.js';
import type { Config } from './schema.js';

export interface PathProblem {
  path: PathKey[];
  message: string;
}

export type ReadFile = (file: string) => Buffer;

/** Regular files of a sane size only: a FIFO named as a certificate hung `outpost check` and start-up. */
const readFromDisk: ReadFile = (file) => readBoundedFile(file);

/** Each TLS file path the config names: where it is in the file, and the object holding it. */
function* tlsFiles(config: Config): Generator<{ path: PathKey[]; holder: Partial<Record<TlsKey, string>>; key: TlsKey; file: string }> {
  const holders: Array<[PathKey[], Partial<Record<TlsKey, string>>]> = [];
  config.listeners.forEach((l, i) => {
    if (l.type === 'mqtts' || l.type === 'wss') holders.push([['listeners', i], l]);
  });
  config.bridges.forEach((b, i) => holders.push([['bridges', i], b]));
  for (const [at, holder] of holders) {
    for (const key of TLS_KEYS) {
      const file = holder[key];
      if (file !== undefined) yield { path: [...at, key], holder, key, file };
    }
  }
}

type TlsKey = 'cert' | 'key' | 'ca' | 'crl';
const TLS_KEYS: readonly TlsKey[] = ['cert', 'key', 'ca', 'crl'];

/** One problem per file that cannot be read, under the key that names it, and one per listener whose files do not work together. */
export function unreadableFiles(config: Config, read: ReadFile = readFromDisk): PathProblem[] {
  const problems: PathProblem[] = [];
  const unread = new Set<object>();
  for (const { path, holder, file } of tlsFiles(config)) {
    try {
      read(file);
    } catch (err) {
      problems.push({ path, message: readFailure(file, err, PEM_FIX) });
      unread.add(holder);
    }
  }
  config.listeners.forEach((l, i) => {
    if ((l.type !== 'mqtts' && l.type !== 'wss') || unread.has(l)) return;
    if (isEncrypted(l.key, read)) {
      problems.push({ path: ['listeners', i, 'key'], message: encryptedMessage(l.key) });
    } else {
      try {
        // What the listener's start does (broker/tls-material.ts): a mismatched key or a non-PEM file fails here.
        createSecureContext({ cert: read(l.cert), key: read(l.key), ...(l.ca !== undefined ? { ca: read(l.ca) } : {}) });
      } catch (err) {
        problems.push({
          path: ['listeners', i, 'cert'],
          message: `${l.cert} and key ${l.key} cannot be used (${(err as Error).message}); check that both are PEM files and the key belongs to the certificate`,
        });
      }
    }
    // Node takes a ca without any certificate in it silently, and then refuses every client certificate.
    if (l.ca !== undefined && !holdsCertificate(l.ca, read)) {
      problems.push({ path: ['listeners', i, 'ca'], message: `${l.ca} holds no PEM certificate (client certificates are checked against it); give the CA certificate that signs them` });
    }
    const crl = l.crl === undefined ? undefined : crlProblem(l.crl, read);
    if (crl !== undefined) problems.push({ path: ['listeners', i, 'crl'], message: crl });
  });
  config.bridges.forEach((b, i) => {
    if (unread.has(b)) return;
    if (b.key !== undefined && isEncrypted(b.key, read)) {
      problems.push({ path: ['bridges', i, 'key'], message: encryptedMessage(b.key) });
    } else if (b.cert !== undefined && b.key !== undefined) {
      try {
        // What each connection attempt does (bridge/upstream-client.ts, tls.connect): a key of another certificate fails here.
        createSecureContext({ cert: read(b.cert), key: read(b.key) });
      } catch (err) {
        problems.push({
          path: ['bridges', i, 'cert'],
          message: `${b.cert} and key ${b.key} cannot be used together (${(err as Error).message}); check that both are PEM files and the key belongs to the client certificate`,
        });
      }
    }
    if (b.ca !== undefined && !holdsCertificate(b.ca, read)) {
      problems.push({ path: ['bridges', i, 'ca'], message: `${b.ca} holds no PEM certificate (the cloud broker's certificate is checked against it); give the CA certificate that signs the cloud broker's` });
    }
  });
  return problems;
}

/**
 * A key encrypted with a passphrase (PKCS#8 ENCRYPTED PRIVATE KEY, or OpenSSL's Proc-Type
 * 4,ENCRYPTED): outpost takes no passphrase, and OpenSSL said only "bad decrypt".
 */
function isEncrypted(file: string, read: ReadFile): boolean {
  try {
    return /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(read(file).toString('latin1'));
  } catch {
    return false;
  }
}

function encryptedMessage(file: string): string {
  return `${file} is encrypted with a passphrase, which outpost cannot take; store the key decrypted (openssl pkey -in ${file} -out NEW-FILE), readable by the outpost user only`;
}

/** Whether a PEM bundle holds at least one certificate that parses (a file gone since it was read: not our problem here). */
function holdsCertificate(file: string, read: ReadFile): boolean {
  let pem: Buffer;
  try {
    pem = read(file);
  } catch {
    return true;
  }
  for (const block of pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []) {
    try {
      new X509Certificate(block);
      return true;
    } catch {
      // not this one; look at the next
    }
  }
  return false;
}

/**
 * What the listener's start says of its crl (broker/tls-material.ts): none in the file, or one
 * node cannot read. Node reads the first CRL of a buffer only, so each is tried alone.
 */
function crlProblem(file: string, read: ReadFile): string | undefined {
  let pem: Buffer;
  try {
    pem = read(file);
  } catch {
    return undefined;
  }
  const remedy = 'give the PEM CRL published by the CA of ca (openssl ca -gencrl)';
  const blocks = pem.toString('latin1').match(/-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----/g) ?? [];
  if (blocks.length === 0) return `${file} holds no PEM CRL (-----BEGIN X509 CRL-----); ${remedy}`;
  try {
    createSecureContext({ crl: blocks });
  } catch (err) {
    return `${file} cannot be used as a CRL (${(err as Error).message}); ${remedy}`;
  }
  return undefined;
}

/** Makes the TLS file paths of listeners and bridges absolute, from `baseDir` (before the config is frozen). */
export function resolveTlsPaths(config: Config, baseDir: string): void {
  for (const { holder, key, file } of tlsFiles(config)) holder[key] = resolve(baseDir, file);
}
