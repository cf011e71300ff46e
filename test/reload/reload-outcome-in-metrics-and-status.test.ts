/**
 * `systemctl reload outpost` succeeds whatever the file holds (ExecReload only sends SIGHUP):
 * a rejected file was said only in the log. /metrics counts reloads by result and says whether
 * the last one was applied, and `outpost status` and the status page (in Debian's chromium) say
 * that the previous config is running.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/run-in-process.js';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-reload-outcome-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the outcome of a SIGHUP reload', () => {
  it('shows in /metrics and in outpost status until a reload applies', async () => {
    const file = join(tmp, 'outpost.yaml');
    const base = `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nlog: { format: json }\nstore: { dir: ${JSON.stringify(join(tmp, 'data'))} }\nmetrics: { host: 127.0.0.1, port: 0 }\n`;
    writeFileSync(file, base);
    const run = await runInProcess(file);
    const { waitLog } = run;
    const url = run.metricsUrl;
    const metric = async (name: string) => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1];
    };
    expect(await metric('outpost_config_last_reload_successful')).toBe('1');

    writeFileSync(file, `${base}log:\n  level: verbose\n`.replace('log: { format: json }\n', ''));
    run.reload();
    await waitLog((m) => m.startsWith('config not reloaded'));
    expect(await metric('outpost_config_last_reload_successful')).toBe('0');
    expect(await metric('outpost_config_reloads_total{result="rejected"}')).toBe('1');
    expect(await metric('outpost_config_reloads_total{result="applied"}')).toBe('0');
    const status = await runCliCaptured(['status', '--url', url]);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(new RegExp(`\\nconfig: the last reload \\(\\d+s ago\\) was rejected, the previous config is running: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:10 log\\.level: must be one of`));

    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 30_000 });
    try {
      const page = await browser.newPage();
      await page.goto(`${url}/`);
      const banner = page.locator('[data-testid=reload]');
      await expect.poll(() => banner.textContent(), { timeout: 10_000 }).toMatch(/^The last config reload was rejected, the previous config is running: .*log\.level: must be one of/);
      expect(await banner.isVisible()).toBe(true);

      writeFileSync(file, `${base}log:\n  level: debug\n`.replace('log: { format: json }\n', ''));
      run.reload();
      await waitLog((m) => m.startsWith('config reloaded'));
      expect(await metric('outpost_config_last_reload_successful')).toBe('1');
      expect(await metric('outpost_config_reloads_total{result="applied"}')).toBe('1');
      expect((await runCliCaptured(['status', '--url', url])).out).not.toContain('config:');
      await page.reload();
      await expect.poll(() => banner.isVisible(), { timeout: 10_000 }).toBe(false);
    } finally {
      await browser.close();
    }

    run.signal('SIGTERM');
    expect(await run.done).toBe(0);
  });
});
