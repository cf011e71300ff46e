/**
 * Pulling the adapter (socat killed under the open pty): the log says why the port was lost.
 * serialport closes the stream with an error marked `disconnected`, whose message is the
 * failed read's, "bad file descriptor": that alone used to be the reason logged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { PtyLab } from '../helpers/pty.js';

let lab: PtyLab | undefined;
let gateway: Gateway | undefined;
let dataDir: string | undefined;

afterEach(async () => {
  await gateway?.stop();
  gateway = undefined;
  await lab?.cleanup();
  lab = undefined;
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a pulled serial adapter', () => {
  it('is logged as lost because it was disconnected, not with the bare error of the failed read', async () => {
    lab = new PtyLab();
    dataDir = mkdtempSync(join(tmpdir(), 'outpost-unplug-reason-'));
    const pty = await lab.pty('usb-FTDI_FT232R-if00-port0');
    const text = [
      'listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]',
      `store: { dir: ${JSON.stringify(dataDir)} }`,
      'serial:',
      '  reopen: { base: 5s, cap: 5s }',
      '  devices:',
      `    - { id: boiler, port: ${pty.path}, driver: line-json }`,
    ].join('\n');
    const logs: { msg: string; reason?: string }[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    gateway = new Gateway(parseConfigText(text, 'unplug.yaml'), { log });
    await gateway.start(new AbortController().signal);
    for (let i = 0; i < 250 && !gateway.serial.isOnline('boiler'); i++) await sleep(20);
    expect(gateway.serial.isOnline('boiler')).toBe(true);

    await pty.unplug();
    for (let i = 0; i < 500 && !logs.some((l) => l.msg === 'serial port lost'); i++) await sleep(20);
    expect(logs.find((l) => l.msg === 'serial port lost')?.reason).toMatch(new RegExp(`^${pty.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( is gone \\(the adapter was unplugged\\)| was disconnected, as when the adapter is unplugged \\(.+\\))$`));
  }, 20_000);
});
