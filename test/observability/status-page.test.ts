/**
 * The status page in a real headless Chromium (Debian's chromium driven by playwright-core),
 * loaded from a real running gateway: it shows the clients, the serial device, the MQTT-SN
 * sensor and the bridge backlog, and its chart grows when more backlog appears. A screenshot
 * is kept in test-artifacts/status-page.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { busyGateway } from '../helpers/ops-run.js';

const CHROMIUM = '/usr/bin/chromium';
const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the status page in Chromium', () => {
  it('shows clients, devices, sensors and bridges of the running gateway and redraws the backlog chart as it grows', async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: the status page test needs Debian's chromium (apt-get install -y chromium; .ci/run installs it)`);
    }
    const { run, ports, client } = await busyGateway('{ host: 127.0.0.1, port: 0, sys_interval: 0, status_interval: 300ms }', cleanups);
    for (let i = 0; i < 3; i++) await client.publishAsync('sensors/room/temp', String(i), { qos: 1 });
    ports.device('/dev/ttyBOILER').write('{"temp": 61.5}\n');

    const browser: Browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      timeout: 30_000,
    });
    cleanups.push(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 900, height: 1100 } });
    await page.goto(`${run.http}/`);

    const bridgeRow = page.locator('#bridges tr').first();
    await expect.poll(() => bridgeRow.locator('td').allTextContents(), { timeout: 10_000 }).toEqual(expect.arrayContaining(['cloud', 'down', '4']));
    await expect.poll(() => page.locator('[data-testid=health]').textContent(), { timeout: 10_000 }).toBe('healthy');
    expect(await page.locator('[data-testid=client-count]').textContent()).toBe('1');
    expect(await page.locator('#clients td').first().textContent()).toBe('dashboard');
    expect((await page.locator('#devices tr').first().locator('td').allTextContents()).slice(0, 2)).toEqual(['boiler', 'online']);
    expect((await page.locator('#sensors tr').first().locator('td').allTextContents()).slice(0, 2)).toEqual(['door-sensor', 'active']);
    expect(await page.locator('#sensor-states').textContent()).toBe('1 active');

    // The chart: one line for the bridge, its last point at the current backlog.
    const line = page.locator('#chart polyline[data-bridge=cloud]');
    await expect.poll(() => line.getAttribute('data-last'), { timeout: 10_000 }).toBe('4');
    const pointsBefore = ((await line.getAttribute('points')) ?? '').split(' ').length;

    for (let i = 0; i < 20; i++) await client.publishAsync('sensors/room/temp', String(100 + i), { qos: 1 });
    await expect.poll(() => line.getAttribute('data-last'), { timeout: 10_000 }).toBe('24');
    await expect.poll(() => bridgeRow.locator('td').nth(2).textContent(), { timeout: 10_000 }).toBe('24');
    const points = ((await line.getAttribute('points')) ?? '').split(' ');
    expect(points.length).toBeGreaterThan(pointsBefore);
    // The newest point is higher on the chart (smaller y) than the first one.
    const y = (p: string) => Number(p.split(',')[1]);
    expect(y(points.at(-1)!)).toBeLessThan(y(points[0]!));

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}status-page.png`, fullPage: true });
    expect(existsSync(`${artifacts}status-page.png`)).toBe(true);
  }, 60_000);
});
