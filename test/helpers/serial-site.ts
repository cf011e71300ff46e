/**
 * A real Gateway reading socat ptys, for serial end-to-end tests: `start` takes the `serial:`
 * section as YAML lines (an MQTT listener on port 0 and a store in a temp dir are added),
 * keeps the JSON log lines at `level` and up, and `dispose` stops everything it started.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { PtyLab } from './pty.js';

export interface SerialLogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export class SerialSite {
  readonly lab = new PtyLab();
  readonly dataDir = mkdtempSync(join(tmpdir(), 'outpost-serial-site-'));
  readonly logs: SerialLogLine[] = [];
  private gw: Gateway | undefined;

  get gateway(): Gateway {
    if (this.gw === undefined) throw new Error('the gateway is not started');
    return this.gw;
  }

  async start(serialLines: string[], level: pino.LevelWithSilent = 'warn'): Promise<Gateway> {
    const text = ['listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]', `store: { dir: ${JSON.stringify(this.dataDir)} }`, 'serial:', ...serialLines].join('\n');
    const log = pino({ level }, { write: (line: string) => void this.logs.push(JSON.parse(line) as SerialLogLine) });
    this.gw = new Gateway(parseConfigText(text, 'serial-site.yaml'), { log });
    await this.gw.start(new AbortController().signal);
    return this.gw;
  }

  async dispose(): Promise<void> {
    await this.gw?.stop();
    this.gw = undefined;
    await this.lab.cleanup();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
