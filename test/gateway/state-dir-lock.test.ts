import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { silentLog } from '../helpers/broker-harness.js';

const running: Gateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop();
});

/** A gateway whose state directory holds an outbox (a bridge to a port nobody listens on). */
function gatewayOn(dir: string, bridged = true): Gateway {
  const bridge = bridged ? `bridges: [{ name: cloud, url: "mqtt://127.0.0.1:9", rules: [{ pattern: "a/#" }] }]\n` : '';
  const config = parseConfigText(
    `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nmetrics: { enabled: false }\nstore: { dir: ${JSON.stringify(dir)} }\n${bridge}`,
    't.yaml',
  );
  return new Gateway(config, { log: silentLog });
}

describe('one gateway per state directory', () => {
  it('refuses to start a second gateway on the same store.dir, naming the directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-lock-'));
    const first = gatewayOn(dir);
    await first.start(new AbortController().signal);
    running.push(first);
    const second = gatewayOn(dir);
    await expect(second.start(new AbortController().signal)).rejects.toThrow(`another outpost is already running with store.dir ${dir}`);
  });

  it('refuses a second gateway without bridges too (persistent sessions and retained messages live there)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-lock-'));
    const first = gatewayOn(dir, false);
    await first.start(new AbortController().signal);
    running.push(first);
    const second = gatewayOn(dir, false);
    await expect(second.start(new AbortController().signal)).rejects.toThrow(
      `another outpost is already running with store.dir ${dir} (${join(dir, 'outpost.lock')} is locked); stop it, or give this one its own store.dir`,
    );
  });

  it('lets the directory be used again once the first gateway stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-lock-'));
    const first = gatewayOn(dir);
    await first.start(new AbortController().signal);
    await first.stop();
    const again = gatewayOn(dir);
    await again.start(new AbortController().signal);
    running.push(again);
  });

  it('is free again after the holder was killed with SIGKILL (no stale lock)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-lock-'));
    const script = `import { lockStateDir } from './src/store/database.ts'; lockStateDir(${JSON.stringify(dir)}); console.log('locked'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await expect(gatewayOn(dir).start(new AbortController().signal)).rejects.toThrow(/already running/);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const after = gatewayOn(dir);
    await after.start(new AbortController().signal);
    running.push(after);
  });
});
