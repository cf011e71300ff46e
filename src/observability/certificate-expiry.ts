/**
 * Expiry of the certificates in use: the server certificates of the mqtts and wss listeners,
 * the bridges' client certificates, and the CA files of both. A field gateway runs for
 * months unattended; a certificate that runs out locks its clients (or the cloud) out.
 *
 *   listener start / reload of its files ─┐
 *   bridge connection attempt (reads) ────┼─▶ update(slot, pem) ─▶ gauge outpost_tls_certificate_expiry_timestamp_seconds
 *   hourly check ─────────────────────────┘                     └▶ warn (expires within 14 days) / error (expired)
 *
 * Each line is written at most once a day per certificate and state (soon, expired, not
 * valid yet): `update` runs at every connection attempt of a bridge.
 * Certificates are read with node's X509Certificate; a CA file (a bundle) counts by its
 * earliest expiry. CA files log expiry as warnings, not errors: a bundle may keep an old
 * CA on purpose while devices move to a new one.
 */
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { LogRateLimiter } from './rate-limit.js';
import type { Sample } from './prometheus.js';

export type CertificateUse = 'listener' | 'listener-ca' | 'bridge' | 'bridge-ca';

export interface CertificateSlot {
  use: CertificateUse;
  /** Labels of its owner: `{ type, address }` of a listener (as outpost_listener_connections), `{ bridge }` of a bridge. */
  owner: Readonly<Record<string, string>>;
  file: string;
  /** The config key naming the file, for the log lines: `listeners[0].cert`. */
  setting: string;
}

interface Entry {
  slot: CertificateSlot;
  log: Logger;
  validFrom: number;
  validTo: number;
  fingerprint: string;
}

export const DAY_MS = 86_400_000;

const WHAT: Record<CertificateUse, { name: string; expired: string; notYet: string }> = {
  listener: { name: 'listener certificate', expired: 'clients refuse it; renew it', notYet: 'clients refuse it (is the clock behind?)' },
  'listener-ca': { name: 'listener ca certificate', expired: 'client certificates signed by it are refused; renew it', notYet: 'client certificates signed by it are refused (is the clock behind?)' },
  bridge: { name: 'bridge client certificate', expired: 'the cloud broker refuses it; renew it', notYet: 'the cloud broker refuses it (is the clock behind?)' },
  'bridge-ca': { name: 'bridge ca certificate', expired: "the cloud broker's certificate no longer verifies; renew it", notYet: "the cloud broker's certificate does not verify (is the clock behind?)" },
};

/** The certificates of a PEM file that X509Certificate reads, in file order. */
export function pemCertificates(pem: Buffer | string): X509Certificate[] {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  const out: X509Certificate[] = [];
  for (const block of text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []) {
    try {
      out.push(new X509Certificate(block));
    } catch {
      // not a certificate node reads; the TLS layer says what it thinks of it
    }
  }
  return out;
}

export interface CertificateExpiryOptions {
  clock?: Clock;
  /** Warn when a certificate expires within this (default 14 days). */
  warnBeforeMs?: number;
  /** How often certificates are checked while nothing reloads them (default 1 h). */
  checkIntervalMs?: number;
  /**
   * Whether a slot belongs to a running component (a bridge removed by a reload does not);
   * others are left out of the gauge and the checks. Only left out, not deleted: a bridge
   * that is starting (or replacing another) reports before it is counted as running.
   */
  live?: (slot: CertificateSlot) => boolean;
}

export class CertificateExpiry {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly limiter: LogRateLimiter;
  private readonly warnBeforeMs: number;
  private timer: TimerHandle | undefined;

  constructor(private readonly options: CertificateExpiryOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.warnBeforeMs = options.warnBeforeMs ?? 14 * DAY_MS;
    this.limiter = new LogRateLimiter(this.clock, DAY_MS, 1);
  }

  /**
   * Records the certificate a file holds now (the first for a cert file, the earliest to
   * expire for a CA file) and checks it at once. A file without a readable certificate
   * leaves the slot out: the TLS layer refuses it with its own sentence.
   */
  update(slot: CertificateSlot, pem: Buffer | string, log: Logger): void {
    const all = pemCertificates(pem);
    const chosen = slot.use.endsWith('-ca') ? all.sort((a, b) => Date.parse(a.validTo) - Date.parse(b.validTo))[0] : all[0];
    const key = slotKey(slot);
    if (chosen === undefined) {
      this.entries.delete(key);
      return;
    }
    const entry: Entry = { slot, log, validFrom: Date.parse(chosen.validFrom), validTo: Date.parse(chosen.validTo), fingerprint: chosen.fingerprint256 };
    this.entries.set(key, entry);
    this.checkOne(entry, this.clock.now());
  }

  /** Forgets the slots of an owner (a bridge replaced by a reload reports its own). */
  forget(owner: Readonly<Record<string, string>>): void {
    for (const [key, e] of this.entries) {
      if (Object.entries(owner).every(([k, v]) => e.slot.owner[k] === v)) this.entries.delete(key);
    }
  }

  /** One sample per certificate: its notAfter in Unix seconds. */
  samples(): Sample[] {
    return this.live().map((e) => ({ labels: { use: e.slot.use, ...e.slot.owner, file: e.slot.file }, value: e.validTo / 1000 }));
  }

  /** Checks every certificate now (the timer does this hourly). */
  check(): void {
    const now = this.clock.now();
    for (const e of this.live()) this.checkOne(e, now);
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = this.clock.setInterval(() => this.check(), this.options.checkIntervalMs ?? 3_600_000);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private live(): Entry[] {
    const live = this.options.live;
    const all = [...this.entries.values()];
    return live === undefined ? all : all.filter((e) => live(e.slot));
  }

  private checkOne(e: Entry, now: number): void {
    const what = WHAT[e.slot.use];
    const ca = e.slot.use.endsWith('-ca');
    const fields = { cert: e.slot.file, setting: e.slot.setting };
    const write = (state: string, level: 'warn' | 'error', extra: object, msg: string) =>
      this.limiter.write(e.log, level, `${e.slot.setting}|${e.fingerprint}|${state}`, { ...fields, ...extra }, msg);
    const validTo = new Date(e.validTo).toISOString();
    if (now > e.validTo) write('expired', ca ? 'warn' : 'error', { validTo }, `${what.name} has expired: ${what.expired}`);
    else if (now < e.validFrom) write('not-yet', 'warn', { validFrom: new Date(e.validFrom).toISOString() }, `${what.name} is not valid yet: ${what.notYet}`);
    else if (e.validTo - now <= this.warnBeforeMs) write('soon', 'warn', { validTo, daysLeft: Math.floor((e.validTo - now) / DAY_MS) }, `${what.name} expires soon; renew it`);
  }
}

function slotKey(s: CertificateSlot): string {
  return `${s.use}|${JSON.stringify(s.owner)}`;
}
