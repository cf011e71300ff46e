/**
 * A FIFO, /dev/zero, a directory or a file of gigabytes named as the config file or as a
 * device map (serial.include) is refused in one sentence that names it, says what it is and
 * what to do. Before, open() blocked for ever on a FIFO without a writer and /dev/zero was read
 * until memory ran out: `outpost check` hung, and a SIGHUP reload stopped the whole gateway.
 * The checks run `outpost` as a child process with a timeout, so a hang fails the test instead
 * of blocking the test worker.
 */
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, symlinkSync, writeFileSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { testCerts } from '../helpers/certs.js';
import { freePort } from '../helpers/free-port.js';
import { OutpostProcess } from '../helpers/outpost-process.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'outpost-not-regular-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let proc: OutpostProcess | undefined;
afterEach(async () => {
  await proc?.stop();
  proc = undefined;
});

/** `outpost check FILE` as a process; a run still going after 15 s is killed (a hang). */
function check(file: string): Promise<{ code: number | null; out: string; hung: boolean }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/main.ts', 'check', file], { cwd: repo, timeout: 15_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number; killed?: boolean }) | null;
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, out: `${stdout}${stderr}`.trim(), hung: e?.killed === true });
    });
  });
}

const fifo = (path: string): string => (execFileSync('mkfifo', [path]), path);

/** A sparse file of `bytes` (no disk used). */
function sparse(path: string, bytes: number): string {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
  return path;
}

describe('a config file that is not a regular file', () => {
  it('is refused by `outpost check` with exit code 2 and one sentence: a FIFO, /dev/zero, a directory', async () => {
    const pipe = fifo(join(tmp, 'pipe.yaml'));
    const dir = join(tmp, 'conf.d');
    mkdirSync(dir);
    const [p, z, d] = await Promise.all([check(pipe), check('/dev/zero'), check(dir)]);
    const todo = 'give the path of the YAML config file itself (outpost reads no pipes, devices or directories)';
    expect(p).toEqual({ code: 2, hung: false, out: `${pipe}: the config file is a FIFO, not a regular file; ${todo}` });
    expect(z).toEqual({ code: 2, hung: false, out: `/dev/zero: the config file is a character device, not a regular file; ${todo}` });
    expect(d).toEqual({ code: 2, hung: false, out: `${dir}: the config file is a directory, not a regular file; ${todo}` });
  }, 30_000);

  it('is refused by its size over 16 MiB without being read: a 2 GiB file named by mistake', async () => {
    const big = sparse(join(tmp, 'disk.img'), 2 ** 31);
    expect(await check(big)).toEqual({ code: 2, hung: false, out: `${big}: the config file is 2 GiB, over the 16 MiB limit; check that it names the YAML config file (one is a few kB)` });
    // Just over the bound is refused too; a file of the bound itself is read (and is no YAML here).
    const over = sparse(join(tmp, 'over.yaml'), 16 * 2 ** 20 + 1);
    expect((await check(over)).out).toBe(`${over}: the config file is 16777217 bytes, over the 16 MiB limit; check that it names the YAML config file (one is a few kB)`);
  }, 30_000);
});

describe('a device map (serial.include) that is not a regular file', () => {
  it('is refused at its serial.include line: a FIFO, /dev/zero, a directory, a 2 GiB file', async () => {
    fifo(join(tmp, 'gps.yaml'));
    mkdirSync(join(tmp, 'maps'));
    sparse(join(tmp, 'huge.yaml'), 2 ** 31);
    const main = join(tmp, 'includes.yaml');
    writeFileSync(main, ['serial:', '  include:', '    - gps.yaml', '    - /dev/zero', '    - maps', '    - huge.yaml', ''].join('\n'));
    const r = await check(main);
    const todo = 'list a YAML file of devices here (outpost reads no pipes, devices or directories)';
    expect(r).toEqual({
      code: 2,
      hung: false,
      out: [
        `${main}:3:7 serial.include[0]: device map file ${join(tmp, 'gps.yaml')} is a FIFO, not a regular file; ${todo}`,
        `${main}:4:7 serial.include[1]: device map file /dev/zero is a character device, not a regular file; ${todo}`,
        `${main}:5:7 serial.include[2]: device map file ${join(tmp, 'maps')} is a directory, not a regular file; ${todo}`,
        `${main}:6:7 serial.include[3]: device map file ${join(tmp, 'huge.yaml')} is 2 GiB, over the 16 MiB limit; check that this names the device map (one is a few kB)`,
      ].join('\n'),
    });
  }, 30_000);
});

describe('a TLS file (cert, key, ca) that is not a regular file', () => {
  it('is refused by `outpost check` at its key in one sentence: a FIFO as a listener certificate, /dev/zero as a bridge CA', async () => {
    const certs = testCerts();
    const cert = fifo(join(tmp, 'server.crt'));
    const main = join(tmp, 'tls.yaml');
    writeFileSync(
      main,
      [
        'listeners:',
        `  - { type: mqtts, host: 127.0.0.1, port: 8883, cert: ${cert}, key: ${certs.server.key} }`,
        'bridges:',
        '  - name: cloud',
        '    url: mqtts://127.0.0.1:8883',
        '    ca: /dev/zero',
        '    rules: [{ pattern: "sensors/#" }]',
        '',
      ].join('\n'),
    );
    const r = await check(main);
    expect(r.hung).toBe(false);
    expect(r.code).toBe(2);
    expect(r.out).toContain(`listeners[0].cert: ${cert} is a FIFO, not a regular file; name the PEM file itself`);
    expect(r.out).toContain('bridges[0].ca: /dev/zero is a character device, not a regular file; name the PEM file itself');
  }, 30_000);
});

describe('a SIGHUP reload that finds a FIFO or /dev/zero', () => {
  it('keeps the running config, logs the refusal and shows it in /metrics, and applies the next good file', async () => {
    const dir = join(tmp, 'reload');
    mkdirSync(dir);
    const file = join(dir, 'outpost.yaml');
    const metricsPort = await freePort();
    const good = (level: string) =>
      [
        `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]`,
        `log: { format: json, level: ${level} }`,
        `store: { dir: ${JSON.stringify(join(dir, 'data'))} }`,
        `metrics: { host: 127.0.0.1, port: ${metricsPort} }`,
        'serial: { include: [devices.yaml] }',
        '',
      ].join('\n');
    writeFileSync(join(dir, 'devices.yaml'), 'devices: []\n');
    writeFileSync(file, good('info'));
    proc = await OutpostProcess.start(file);
    const metric = async (name: string): Promise<string | undefined> =>
      (await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1];
    const prefix = 'config not reloaded, the running config stays: ';
    const refused = (): string[] =>
      proc!.output().split('\n').filter((l) => l.startsWith('{')).map((l) => String((JSON.parse(l) as { msg?: unknown }).msg)).filter((m) => m.startsWith(prefix));
    /** The reason of the n-th refused reload (from 1). */
    const refusal = async (n: number): Promise<string> => {
      for (let i = 0; i < 500 && refused().length < n; i++) await new Promise((r) => setTimeout(r, 20));
      expect(refused().length, `reload ${n} was not refused: ${proc!.output().slice(-2000)}`).toBeGreaterThanOrEqual(n);
      return refused()[n - 1]!.slice(prefix.length);
    };

    // The config file itself swapped for a FIFO (nobody writes it).
    renameSync(file, `${file}.good`);
    fifo(file);
    proc.hup();
    expect(await refusal(1)).toBe(`${file}: the config file is a FIFO, not a regular file; give the path of the YAML config file itself (outpost reads no pipes, devices or directories)`);
    expect(await metric('outpost_config_last_reload_successful')).toBe('0');

    // The config back, its device map now a link to /dev/zero.
    rmSync(file);
    renameSync(`${file}.good`, file);
    rmSync(join(dir, 'devices.yaml'));
    symlinkSync('/dev/zero', join(dir, 'devices.yaml'));
    proc.hup();
    expect(await refusal(2)).toBe(`${file}:5:21 serial.include[0]: device map file ${join(dir, 'devices.yaml')} is a character device, not a regular file; list a YAML file of devices here (outpost reads no pipes, devices or directories)`);
    expect(await metric('outpost_config_reloads_total{result="rejected"}')).toBe('2');

    // Still serving, and a good file applies.
    rmSync(join(dir, 'devices.yaml'));
    writeFileSync(join(dir, 'devices.yaml'), 'devices: []\n');
    writeFileSync(file, good('debug'));
    proc.hup();
    for (let i = 0; i < 500 && proc.logLines('config reloaded').length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(proc.logLines('config reloaded')).toHaveLength(1);
    expect(await metric('outpost_config_last_reload_successful')).toBe('1');
    expect(await proc.stop()).toBe(0);
  }, 60_000);
});
