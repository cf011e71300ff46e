/**
 * A Modbus RTU bus for gateway tests: a socat pty (the RS-485 adapter outpost opens) with the
 * slave simulator answering on its far side, a state directory, and the Gateway and
 * mosquitto_sub the test starts on it; close() stops them all in reverse order.
 *
 *   Gateway ── open(bus.path) ── pty ══ socat ══ test socket ── ModbusSlaveSim (slaves 1..n)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Config } from '../../src/config/schema.js';
import { Gateway } from '../../src/gateway.js';
import { ModbusSlaveSim, type SlaveMemory } from './modbus-slave.js';
import { MosquittoSub } from './mosquitto-sub.js';
import { PtyLab, type SocatPty } from './pty.js';

export class ModbusBus {
  gateway: Gateway | undefined;
  sub: MosquittoSub | undefined;

  private constructor(
    private readonly lab: PtyLab,
    readonly bus: SocatPty,
    readonly sim: ModbusSlaveSim,
    readonly dataDir: string,
  ) {}

  /** A bus at the pty link `name` with `slaves` (id → registers) on it. */
  static async open(name: string, slaves: Record<number, SlaveMemory>): Promise<ModbusBus> {
    const lab = new PtyLab();
    const dataDir = mkdtempSync(join(tmpdir(), 'outpost-modbus-'));
    const bus = await lab.pty(name);
    const sim = new ModbusSlaveSim((b) => void bus.write(b).catch(() => undefined));
    bus.onReceive((b) => sim.feed(b));
    for (const [id, mem] of Object.entries(slaves)) sim.slaves.set(Number(id), mem);
    return new ModbusBus(lab, bus, sim, dataDir);
  }

  /** The first lines of a config for this bus: an MQTT listener on any free port, state in dataDir. */
  configHead(): string[] {
    return ['listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]', `store: { dir: ${JSON.stringify(this.dataDir)} }`];
  }

  /** Starts a Gateway (logs silenced) with `config`, and mosquitto_sub on its listener for `topics`. */
  async start(config: Config, topics: string[]): Promise<{ gateway: Gateway; sub: MosquittoSub; port: number }> {
    const gateway = (this.gateway = new Gateway(config, { log: pino({ level: 'silent' }) }));
    await gateway.start(new AbortController().signal);
    const port = gateway.addresses[0]!.port;
    const sub = (this.sub = new MosquittoSub(port, topics));
    return { gateway, sub, port };
  }

  async close(): Promise<void> {
    this.sub?.stop();
    this.sim.stop();
    await this.gateway?.stop();
    await this.lab.cleanup();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
