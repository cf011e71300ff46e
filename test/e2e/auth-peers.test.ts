/**
 * Authentication and ACLs against real peers: mosquitto_pub / mosquitto_sub with -u/-P
 * (3.1.1 and -V mqttv5) and MQTT.js, over real TCP against the Gateway.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatPasswordFile, hashPassword } from '../../src/auth/password-file.js';
import { FAST_SCRYPT } from '../helpers/auth-harness.js';
import { startGateway, within, type RunningGateway } from '../helpers/gateway-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'outpost-auth-e2e-'));
const ACL = ['user alice', 'readwrite home/#', 'user bob', 'read home/#', 'write bob/#'].join('\n');
let gw: RunningGateway;
const children: ChildProcess[] = [];

beforeAll(async () => {
  writeFileSync(join(dir, 'passwd'), formatPasswordFile([
    ['alice', await hashPassword('secret', FAST_SCRYPT)],
    ['bob', await hashPassword('pw', FAST_SCRYPT)],
  ]));
  writeFileSync(join(dir, 'acl'), `${ACL}\n`);
  gw = await startGateway('', ['auth:', `  password_file: ${join(dir, 'passwd')}`, `  acl_file: ${join(dir, 'acl')}`, '  failure_delay: 800ms'].join('\n'));
});

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

afterAll(async () => {
  await within(gw.stop(), 5000, 'the gateway to stop');
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Runs a mosquitto client to its end (killed by pid after ms). */
function run(bin: string, args: string[], ms = 8000): Promise<Run> & { child: ChildProcess } {
  // stdbuf -oL: line-buffered stdout through the pipe, so "-d" lines (SUBACK) arrive as printed.
  // stdbuf execs the client, so the pid is the client's.
  const child = spawn('stdbuf', ['-oL', bin, '-h', '127.0.0.1', '-p', String(gw.port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const done = new Promise<Run>((resolve) => {
    const t = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), ms);
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
  return Object.assign(done, { child });
}

/** A mosquitto_sub that is subscribed (its SUBACK arrived: -d prints it) before the test goes on. */
async function subscriber(args: string[]): Promise<{ done: Promise<Run> }> {
  const p = run('mosquitto_sub', ['-d', ...args]);
  await within(new Promise<void>((resolve) => {
    let seen = '';
    p.child.stdout!.on('data', (c: Buffer | string) => {
      seen += String(c);
      if (seen.includes('SUBACK')) resolve();
    });
  }), 5000, 'mosquitto_sub to be subscribed');
  return { done: p }; // wrapped: an async function returning the promise itself would wait for it
}

const payloads = (out: string) => out.split('\n').filter((l) => l !== '' && !l.startsWith('Client ') && !l.startsWith('Subscribed'));

describe.each([['3.1.1', 'mqttv311'], ['5', 'mqttv5']])('mosquitto clients, MQTT %s, with -u/-P', (_name, V) => {
  it('publish and receive what the ACL allows', async () => {
    const sub = await subscriber(['-V', V, '-u', 'bob', '-P', 'pw', '-t', 'home/#', '-C', '1', '-i', `bob-${V}`]);
    const pub = await run('mosquitto_pub', ['-V', V, '-u', 'alice', '-P', 'secret', '-t', 'home/door', '-m', 'open', '-q', '1']);
    expect(pub.code).toBe(0);
    const got = await sub.done;
    expect(payloads(got.out)).toEqual(['open']);
  });

  it('are refused with a wrong password or an unknown user', async () => {
    for (const [u, p] of [['alice', 'wrong'], ['mallory', 'secret']]) {
      const r = await run('mosquitto_pub', ['-V', V, '-u', u!, '-P', p!, '-t', 'home/door', '-m', 'x']);
      expect(r.code).not.toBe(0);
      expect(r.err.toLowerCase()).toContain('bad user name or password');
    }
  });

  it('get a denied publish dropped and a denied subscription refused', async () => {
    const sub = await subscriber(['-V', V, '-u', 'alice', '-P', 'secret', '-t', 'home/#', '-C', '1', '-i', `alice-${V}`]);
    // bob may read home/# but not write it; then a message alice may see, so the sub ends.
    const denied = await run('mosquitto_pub', ['-V', V, '-u', 'bob', '-P', 'pw', '-t', 'home/door', '-m', 'from-bob', '-q', '1']);
    if (V === 'mqttv5') expect(denied.err.toLowerCase()).toContain('not authorized');
    else expect(denied.code).toBe(0); // 3.1.1: acknowledged as the protocol requires, then dropped
    await run('mosquitto_pub', ['-V', V, '-u', 'alice', '-P', 'secret', '-t', 'home/door', '-m', 'from-alice', '-q', '1']);
    expect(payloads((await sub.done).out)).toEqual(['from-alice']);
    const refused = await run('mosquitto_sub', ['-V', V, '-u', 'bob', '-P', 'pw', '-t', 'secret/#', '-d'], 3000);
    expect(refused.out + refused.err).toMatch(V === 'mqttv5' ? /SUBACK[\s\S]*(denied|135|0x87)/i : /SUBACK[\s\S]*(denied|128|0x80)/i);
  });
});

describe('MQTT.js with a wrong password', () => {
  it('is refused with 0x86 only after the failure delay', async () => {
    const t0 = performance.now();
    const err = await within(new Promise<Error & { code?: number }>((resolve) => {
      const c = mqtt.connect(gw.url, { protocolVersion: 5, username: 'alice', password: 'nope', reconnectPeriod: 0, clientId: 'js-wrong' });
      c.on('error', (e) => {
        c.end(true);
        resolve(e as Error & { code?: number });
      });
    }), 5000, 'the refusal');
    const took = performance.now() - t0;
    expect(err.code).toBe(0x86);
    expect(took).toBeGreaterThanOrEqual(780);
    expect(took).toBeLessThan(4000);
  });

  it('connects at once with the right one', async () => {
    const t0 = performance.now();
    const c = await within(mqtt.connectAsync(gw.url, { protocolVersion: 5, username: 'alice', password: 'secret', reconnectPeriod: 0, clientId: 'js-ok' }), 5000, 'connect');
    expect(performance.now() - t0).toBeLessThan(780);
    await c.endAsync();
  });
});
