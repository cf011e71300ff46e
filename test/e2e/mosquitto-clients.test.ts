/**
 * Interoperability with the mosquitto command line clients (mosquitto_pub and
 * mosquitto_sub 2.0), MQTT 3.1.1 and 5.0, over real TCP against the Gateway.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, within, type RunningGateway } from '../helpers/gateway-fixture.js';

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

beforeAll(() => {
  for (const bin of ['mosquitto_pub', 'mosquitto_sub']) {
    if (!onPath(bin)) throw new Error(`${bin} is not on PATH: install mosquitto-clients (.ci/run installs it with apt-get)`);
  }
});

let gw: RunningGateway;
const children: ChildProcess[] = [];

beforeEach(async () => {
  gw = await startGateway();
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await within(gw.stop(), 5000, 'the gateway to stop');
});

interface Proc {
  child: ChildProcess;
  /** stdout lines so far. */
  lines: string[];
  stderr(): string;
  exited: Promise<number | null>;
  /** Resolves once a stdout line satisfies `match`. */
  waitLine(match: (line: string) => boolean, what: string, ms?: number): Promise<string>;
}

function run(bin: string, args: string[]): Proc {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let err = '';
  let partial = '';
  const waiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    waitLine(match, what, ms = 3000) {
      const found = lines.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return within(new Promise<string>((resolve) => waiters.push({ match, resolve })), ms, `${bin} to print ${what}; stdout: ${lines.join(' | ')}; stderr: ${err}`);
    },
  };
}

const MSG = /^MSG /;
const PROBE = 'probe';

/** Messages a test expects: MSG lines that are not subscription probes. */
const messagesOf = (p: Proc) => p.lines.filter((l) => MSG.test(l) && !l.endsWith(` ${PROBE}`));

/**
 * mosquitto_sub says nothing when its SUBACK arrives (its debug output is block-buffered
 * on a pipe), so probe: publish on a topic its filter matches until one is printed.
 */
async function subscribed(p: Proc, probeTopic: string): Promise<void> {
  const timer = setInterval(() => {
    gw.gateway.broker.publish({ topic: probeTopic, payload: Buffer.from(PROBE), qos: 0, retain: false, origin: { kind: 'system', id: 'probe' } });
  }, 25);
  try {
    await p.waitLine((l) => l.startsWith(`MSG ${probeTopic} `) && l.endsWith(` ${PROBE}`), 'a subscription probe');
  } finally {
    clearInterval(timer);
  }
}

describe.each([
  ['mqttv31', '3.1'],
  ['mqttv311', '3.1.1'],
  ['mqttv5', '5.0'],
] as const)('mosquitto clients with -V %s (MQTT %s)', (v, _name) => {
  const conn = () => ['-h', gw.host, '-p', String(gw.port), '-V', v];

  /** mosquitto_sub printing "MSG topic qos retain payload" lines, once it is subscribed. */
  async function sub(topic: string, probeTopic: string, extra: string[] = []): Promise<Proc> {
    const p = run('mosquitto_sub', [...conn(), '-q', '2', '-t', topic, '-F', 'MSG %t %q %r %p', ...extra]);
    await subscribed(p, probeTopic);
    return p;
  }

  async function pub(args: string[]): Promise<void> {
    const p = run('mosquitto_pub', [...conn(), ...args]);
    const code = await within(p.exited, 5000, `mosquitto_pub ${args.join(' ')} to exit`);
    expect(code, `mosquitto_pub ${args.join(' ')} failed: ${p.stderr()}`).toBe(0);
  }

  it('delivers QoS 0, 1 and 2 messages exactly once each, with their QoS', async () => {
    const s = await sub('mc/qos/#', 'mc/qos/probe');
    await pub(['-t', 'mc/qos/0', '-q', '0', '-m', 'zero']);
    await pub(['-t', 'mc/qos/1', '-q', '1', '-m', 'one']);
    await pub(['-t', 'mc/qos/2', '-q', '2', '-m', 'two']);
    await s.waitLine((l) => l === 'MSG mc/qos/2 2 0 two', 'the QoS 2 message');
    await new Promise((r) => setTimeout(r, 200)); // room for a duplicate to show up
    expect(messagesOf(s)).toEqual(['MSG mc/qos/0 0 0 zero', 'MSG mc/qos/1 1 0 one', 'MSG mc/qos/2 2 0 two']);
  });

  it('shows a retained message (-r) to a later mosquitto_sub -C 1, and clears it with -r -n', async () => {
    await pub(['-t', 'mc/retained', '-q', '1', '-r', '-m', 'kept']);
    const later = run('mosquitto_sub', [...conn(), '-t', 'mc/retained', '-C', '1', '-F', 'MSG %t %r %p']);
    expect(await within(later.exited, 5000, 'mosquitto_sub -C 1 to exit')).toBe(0);
    expect(later.lines).toEqual(['MSG mc/retained 1 kept']);

    await pub(['-t', 'mc/retained', '-q', '1', '-r', '-n']);
    const none = run('mosquitto_sub', [...conn(), '-t', 'mc/retained', '-W', '1', '-F', 'MSG %t %r %p']);
    await within(none.exited, 5000, 'mosquitto_sub -W 1 to time out');
    expect(none.lines).toEqual([]);
    expect(none.stderr()).not.toMatch(/error/i);
  });

  it('publishes the Will of a mosquitto_sub killed with SIGKILL', async () => {
    const watcher = await sub('mc/wills/#', 'mc/wills/probe');
    const dying = await sub('mc/ignored', 'mc/ignored', ['--will-topic', `mc/wills/${v}`, '--will-payload', 'killed', '--will-qos', '1']);
    process.kill(dying.child.pid!, 'SIGKILL');
    await dying.exited;
    const line = await watcher.waitLine((l) => MSG.test(l) && !l.endsWith(` ${PROBE}`), 'the will');
    expect(line).toBe(`MSG mc/wills/${v} 1 0 killed`);
  });

  it('does not publish the Will of a mosquitto_sub that exits normally', async () => {
    const watcher = await sub('mc/wills/#', 'mc/wills/probe');
    const polite = run('mosquitto_sub', [...conn(), '-t', 'mc/trigger', '-C', '1', '-F', 'MSG %t %q %r %p', '--will-topic', 'mc/wills/polite', '--will-payload', 'should not appear']);
    await subscribed(polite, 'mc/trigger'); // its one message: it disconnects and exits
    expect(await within(polite.exited, 5000, 'mosquitto_sub -C 1 to exit')).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(messagesOf(watcher)).toEqual([]);
  });
});

describe('mosquitto clients across protocol versions', () => {
  it('carries a message from an MQTT 5 mosquitto_pub with a user property to an MQTT 3.1.1 mosquitto_sub', async () => {
    const s = run('mosquitto_sub', ['-h', gw.host, '-p', String(gw.port), '-V', 'mqttv311', '-t', 'mc/x', '-F', 'MSG %t %p']);
    await subscribed(s, 'mc/x');
    const p = run('mosquitto_pub', ['-h', gw.host, '-p', String(gw.port), '-V', 'mqttv5', '-t', 'mc/x', '-m', 'hello', '-D', 'publish', 'user-property', 'k', 'v']);
    expect(await within(p.exited, 5000, 'mosquitto_pub to exit')).toBe(0);
    expect(await s.waitLine((l) => MSG.test(l) && !l.endsWith(` ${PROBE}`), 'the message')).toBe('MSG mc/x hello');
  });
});
