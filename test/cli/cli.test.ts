import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, type CliDeps, type GatewayLike, type ProcessHooks } from '../../src/cli.js';
import { OutpostError } from '../../src/core/errors.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'outpost-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const file = join(tmp, name);
  writeFileSync(file, text);
  return file;
}

/** A fake process: signals and crashes are fired by the test; exitNow is recorded. */
class FakeProcess implements ProcessHooks {
  signalHandlers = new Set<(s: string) => void>();
  crashHandlers = new Set<(e: unknown, origin: string) => void>();
  exits: number[] = [];
  onSignal(fn: (s: string) => void) {
    this.signalHandlers.add(fn);
    return () => void this.signalHandlers.delete(fn);
  }
  onCrash(fn: (e: unknown, origin: string) => void) {
    this.crashHandlers.add(fn);
    return () => void this.crashHandlers.delete(fn);
  }
  exitNow(code: number) {
    this.exits.push(code);
  }
  signal(s = 'SIGTERM') {
    for (const fn of [...this.signalHandlers]) fn(s);
  }
}

function harness(overrides: Partial<CliDeps> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const logLines: string[] = [];
  const proc = new FakeProcess();
  const deps: CliDeps = {
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    process: proc,
    logDestination: { write: (line: string) => void logLines.push(line) },
    ...overrides,
  };
  const logs = () => logLines.map((l) => JSON.parse(l) as { level: string; msg: string } & Record<string, unknown>);
  return { deps, proc, out: () => out.join(''), err: () => err.join(''), logs };
}

const tick = () => new Promise((r) => setTimeout(r, 10));

describe('outpost CLI', () => {
  it('prints the package version for --version and exits 0', async () => {
    const h = harness();
    expect(await runCli(['--version'], h.deps)).toBe(0);
    expect(h.out()).toBe('0.1.0\n');
  });

  it.each([['--help'], ['-h'], ['help']])('prints usage for %s and exits 0', async (arg) => {
    const h = harness();
    expect(await runCli([arg], h.deps)).toBe(0);
    expect(h.out()).toMatch(/^Usage: outpost <command>/);
    expect(h.out()).toContain('check FILE');
  });

  it.each([
    [['frob'], 'outpost: unknown command "frob"; see "outpost --help"\n'],
    [['run', '--frob'], 'outpost: unknown option "--frob"; see "outpost --help"\n'],
    [['run', '--config'], 'outpost: option --config needs a value; see "outpost --help"\n'],
    [['check'], 'outpost: check needs the config file: outpost check FILE; see "outpost --help"\n'],
    [[], 'outpost: missing command; see "outpost --help"\n'],
  ])('rejects %j with one usage line on stderr and exit 2', async (argv, line) => {
    const h = harness();
    expect(await runCli(argv, h.deps)).toBe(2);
    expect(h.err()).toBe(line);
    expect(h.out()).toBe('');
  });

  it('says "FILE: ok" and exits 0 when check accepts a file', async () => {
    const file = writeConfig('good.yaml', 'listeners:\n  - type: mqtt\n    port: 1884\n');
    const h = harness();
    expect(await runCli(['check', file], h.deps)).toBe(0);
    expect(h.out()).toBe(`${file}: ok\n`);
  });

  it('accepts the shipped example config', async () => {
    const h = harness();
    expect(await runCli(['check', 'config/outpost.example.yaml'], h.deps)).toBe(0);
    expect(h.out()).toBe('config/outpost.example.yaml: ok\n');
  });

  it('prints every problem to stderr and exits 2 when check rejects a file', async () => {
    const file = writeConfig('bad.yaml', 'broker:\n  max_inflight: 0\n  prot: 1\n');
    const h = harness();
    expect(await runCli(['check', file], h.deps)).toBe(2);
    expect(h.err()).toBe(
      `${file}:2:17 broker.max_inflight: must be at least 1, got 0\n` +
        `${file}:3:3 broker.prot: unknown key "prot"; remove it or use one of: ${
          'connect_timeout, max_packet_size, max_keepalive, receive_maximum, max_inflight, max_queued_messages, ' +
          'max_queued_bytes, topic_alias_maximum, max_topic_levels, retain_available, max_session_expiry, ' +
          'allow_empty_client_id, max_connections, max_connections_per_address, connect_rate, connect_burst'
        }\n`,
    );
  });

  it('exits 2 from check and from run alike when a TLS file the config names cannot be read', async () => {
    const file = writeConfig('tls-missing.yaml', 'bridges:\n  - name: cloud\n    url: mqtts://cloud.example:8883\n    ca: /nonexistent/ca.crt\n    rules: [{ pattern: "#" }]\n');
    const line = `${file}:4:9 bridges[0].ca: cannot read /nonexistent/ca.crt (ENOENT); fix the path or its permissions\n`;
    const checked = harness();
    expect(await runCli(['check', file], checked.deps)).toBe(2);
    expect(checked.err()).toBe(line);
    const ran = harness();
    expect(await runCli(['run', '--config', file], ran.deps)).toBe(2);
    expect(ran.err()).toBe(line);
    expect(ran.logs()).toEqual([]);
  });

  it('exits 2 naming the file when check cannot read it', async () => {
    const h = harness();
    expect(await runCli(['check', join(tmp, 'nope.yaml')], h.deps)).toBe(2);
    expect(h.err()).toContain(`${join(tmp, 'nope.yaml')}: cannot read the config file`);
  });

  it('exits 2 without starting when run is given a bad config', async () => {
    const file = writeConfig('bad-run.yaml', 'log: { level: loud }\n');
    const h = harness();
    expect(await runCli(['run', '--config', file], h.deps)).toBe(2);
    expect(h.err()).toContain(`${file}:1:15 log.level: must be one of`);
    expect(h.logs()).toEqual([]);
  });
});

describe('outpost run', () => {
  const quietConfig = () => writeConfig('run.yaml', 'listeners: [{ type: mqtt, port: 0 }]\nlog: { format: json }\n');

  function fakeGateway(behaviour: Partial<GatewayLike> = {}): GatewayLike & { stopped: number } {
    const gw = {
      stopped: 0,
      addresses: [{ type: 'mqtt', host: '127.0.0.1', port: 40_000 }],
      start: async () => {},
      stop: async () => {
        gw.stopped++;
      },
      ...behaviour,
    };
    return gw;
  }

  it('logs the listener addresses once started and stops with exit 0 on SIGTERM', async () => {
    const gw = fakeGateway();
    const h = harness({ createGateway: () => gw });
    const done = runCli(['run', '--config', quietConfig()], h.deps);
    await tick();
    expect(h.logs().find((l) => l.msg === 'gateway started')).toMatchObject({
      level: 'info',
      listeners: [{ type: 'mqtt', host: '127.0.0.1', port: 40_000 }],
    });
    h.proc.signal('SIGTERM');
    expect(await done).toBe(0);
    expect(gw.stopped).toBe(1);
    expect(h.logs().map((l) => l.msg)).toEqual(['starting', 'gateway started', 'stopping', 'stopped']);
    expect(h.proc.signalHandlers.size).toBe(0);
    expect(h.proc.crashHandlers.size).toBe(0);
  });

  it('logs one fatal line and exits 1 when the gateway cannot start', async () => {
    const gw = fakeGateway({
      start: async () => {
        throw new OutpostError('BROKER_LISTEN_FAILED', '127.0.0.1:1883 is already in use; stop the other broker');
      },
    });
    const h = harness({ createGateway: () => gw });
    expect(await runCli(['run', '--config', quietConfig()], h.deps)).toBe(1);
    const fatal = h.logs().filter((l) => l.level === 'fatal');
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({
      msg: 'startup failed: 127.0.0.1:1883 is already in use; stop the other broker',
      code: 'BROKER_LISTEN_FAILED',
    });
  });

  it('exits 2, which systemd does not restart, when a file the config names cannot be used at start', async () => {
    const gw = fakeGateway({
      start: async () => {
        throw new OutpostError('CONFIG_UNREADABLE', '/etc/outpost/acl: cannot read the ACL file (ENOENT); fix auth.acl_file');
      },
    });
    const h = harness({ createGateway: () => gw });
    expect(await runCli(['run', '--config', quietConfig()], h.deps)).toBe(2);
    expect(h.logs().filter((l) => l.level === 'fatal')).toMatchObject([{ code: 'CONFIG_UNREADABLE' }]);
  });

  it('exits 1 at once on a second signal while stopping', async () => {
    const gw = fakeGateway({ stop: () => new Promise<void>(() => {}) });
    const h = harness({ createGateway: () => gw, stopTimeoutMs: 1000 });
    void runCli(['run', '--config', quietConfig()], h.deps);
    await tick();
    h.proc.signal('SIGINT');
    await tick();
    expect(h.proc.exits).toEqual([]);
    h.proc.signal('SIGINT');
    expect(h.proc.exits).toEqual([1]);
  });

  it('exits 1 when stopping takes longer than the stop timeout', async () => {
    const gw = fakeGateway({ stop: () => new Promise<void>(() => {}) });
    const h = harness({ createGateway: () => gw, stopTimeoutMs: 50 });
    void runCli(['run', '--config', quietConfig()], h.deps);
    await tick();
    h.proc.signal('SIGTERM');
    await new Promise((r) => setTimeout(r, 150));
    expect(h.proc.exits).toEqual([1]);
    expect(h.logs().map((l) => l.msg)).toContain('stop timed out, exiting now');
  });

  it('logs fatal and exits 1 on an uncaught exception', async () => {
    const h = harness({ createGateway: () => fakeGateway() });
    const done = runCli(['run', '--config', quietConfig()], h.deps);
    await tick();
    for (const fn of h.proc.crashHandlers) fn(new Error('boom'), 'uncaughtException');
    expect(h.proc.exits).toEqual([1]);
    expect(h.logs().at(-1)).toMatchObject({ level: 'fatal', origin: 'uncaughtException', err: { message: 'boom' } });
    h.proc.signal();
    await done;
  });

  it('runs as a real process: logs "gateway started" as JSON and exits 0 on SIGTERM', async () => {
    const file = writeConfig(
      'process.yaml',
      `listeners: [{ type: mqtt, port: 0 }]\nmetrics: { port: 0 }\nstore: { dir: ${JSON.stringify(join(tmp, 'data'))} }\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'run', '--config', file], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (stdout.includes('gateway started')) resolve();
        });
        void exited.then((code) => reject(new Error(`exited early with ${code}: ${stderr}`)));
      });
      const started = stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l['msg'] === 'gateway started');
      expect(started).toMatchObject({ level: 'info', listeners: expect.any(Array) });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stdout).toContain('"msg":"stopped"');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
