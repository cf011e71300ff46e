/**
 * A real Mosquitto 2.0 as the "cloud" broker of the bridge tests: generated config,
 * 127.0.0.1 free ports (kept across restarts), log to a file, process handled by pid.
 *
 *   plain listener   for the observing subscriber (and mqtt:// bridges)
 *   TLS listener     server cert from test/helpers/certs.ts (or the expired / rogue one),
 *                    optionally require_certificate (mTLS) with use_identity_as_username
 *
 * With `users`, a password file is written with `mosquitto_passwd -b` and anonymous access is
 * off; an `observer` user (password `observer`) is always added for the subscriber helper.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { spawnTracked } from './child-process.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { testCerts } from './certs.js';
import { freePort } from './free-port.js';

export { freePort };

export interface MosquittoOptions {
  /** Server certificate on the TLS listener: the valid one (default), an expired one, or one from an untrusted CA. */
  serverCert?: 'valid' | 'expired' | 'rogue';
  /** mTLS: the TLS listener requires a client certificate signed by the test CA; its CN becomes the user name. */
  requireCertificate?: boolean;
  /** user → password; turns anonymous access off. */
  users?: Record<string, string>;
  /** Keep sessions and retained messages across restarts (in the broker's tmp dir). */
  persistence?: boolean;
  /** Extra mosquitto.conf lines. */
  extra?: string[];
}

export const OBSERVER = { username: 'observer', password: 'observer' };

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}


export class Mosquitto {
  plainPort = 0;
  tlsPort = 0;
  readonly dir: string;
  readonly logFile: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(private readonly options: MosquittoOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'outpost-mosquitto-'));
    this.logFile = join(this.dir, 'mosquitto.log');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get plainUrl(): string {
    return `mqtt://127.0.0.1:${this.plainPort}`;
  }

  get tlsUrl(): string {
    return `mqtts://127.0.0.1:${this.tlsPort}`;
  }

  /** Everything mosquitto logged so far. */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  async start(): Promise<void> {
    if (this.child !== undefined) throw new Error('mosquitto is already running');
    if (this.plainPort === 0) this.plainPort = await freePort();
    if (this.tlsPort === 0) this.tlsPort = await freePort();
    const conf = join(this.dir, 'mosquitto.conf');
    writeFileSync(conf, this.config());
    const started = spawnTracked('mosquitto', ['-c', conf], () => {
      if (this.child === child) this.child = undefined;
    });
    const child = started.child;
    this.child = child;
    this.exited = started.exited;
    const deadline = Date.now() + 5000;
    // mosquitto opens every listener before it serves any: the plain one answering is enough
    // (a probe of the TLS port would only log a failed handshake).
    while (!(await canConnect(this.plainPort))) {
      if (this.child !== child) throw new Error(`mosquitto exited at start: ${started.stderr()}${this.log()}`);
      if (Date.now() > deadline) throw new Error(`mosquitto is not listening after 5 s: ${started.stderr()}${this.log()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM and wait for the exit. */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  /** SIGKILL (no will messages, no persistence write) and wait for the exit. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** Stops (SIGTERM) and starts again on the same ports. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the broker and removes its directory. */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child?.pid === undefined) return;
    try {
      process.kill(child.pid, sig);
    } catch {
      // already gone
    }
    await this.exited;
  }

  private config(): string {
    const certs = testCerts();
    const server = this.options.serverCert === 'expired' ? certs.expired : this.options.serverCert === 'rogue' ? certs.rogue : certs.server;
    const lines = [
      'per_listener_settings false',
      `persistence ${this.options.persistence === true ? 'true' : 'false'}`,
      `persistence_location ${this.dir}/`,
      `log_dest file ${this.logFile}`,
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages true',
      'log_timestamp_format %H:%M:%S',
      // The observer and the bridge under test must not lose messages to mosquitto's queue limits.
      'max_queued_messages 1000000',
      'max_inflight_messages 0',
    ];
    // As root, mosquitto would switch to the mosquitto user, which cannot read the 0700 tmp dirs.
    if (process.getuid?.() === 0) lines.push('user root');
    if (this.options.users !== undefined) {
      const passwd = join(this.dir, 'passwd');
      writeFileSync(passwd, '');
      for (const [user, password] of Object.entries({ ...this.options.users, [OBSERVER.username]: OBSERVER.password })) {
        execFileSync('mosquitto_passwd', ['-b', passwd, user, password], { stdio: 'ignore' });
      }
      lines.push('allow_anonymous false', `password_file ${passwd}`);
    } else {
      lines.push('allow_anonymous true');
    }
    lines.push(`listener ${this.plainPort} 127.0.0.1`);
    lines.push(`listener ${this.tlsPort} 127.0.0.1`, `cafile ${certs.ca.crt}`, `certfile ${server.crt}`, `keyfile ${server.key}`);
    if (this.options.requireCertificate === true) lines.push('require_certificate true', 'use_identity_as_username true');
    lines.push(...(this.options.extra ?? []));
    return lines.join('\n') + '\n';
  }
}

export interface ObservedMessage {
  topic: string;
  payload: Buffer;
  retain: boolean;
  qos: number;
}

/** An MQTT.js subscriber on the cloud side: what actually arrived there. */
export class Observer {
  readonly messages: ObservedMessage[] = [];
  private waiters: (() => void)[] = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload, retain: packet.retain, qos: packet.qos });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(broker: Mosquitto, filters: string[], options: IClientOptions = {}): Promise<Observer> {
    const client = mqtt.connect(broker.plainUrl, { ...OBSERVER, clientId: `observer-${Math.random().toString(16).slice(2)}`, protocolVersion: 5, reconnectPeriod: 0, ...options });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    const observer = new Observer(client);
    await client.subscribeAsync(filters, { qos: 1 });
    return observer;
  }

  on(topic: string): ObservedMessage[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  /** Resolves once `done(messages)` holds; rejects after `ms` with `what` in the message. */
  async until(done: (messages: ObservedMessage[]) => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done(this.messages)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; ${this.messages.length} messages arrived`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
