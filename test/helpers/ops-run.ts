/**
 * `outpost run` in-process (runCli) on a real gateway with real sockets: the way the ops
 * tests (metrics families, $SYS copies, status JSON, status page) see a running service.
 * Serial ports may be in memory (GatewayDeps.serialPorts); everything else is real.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type ProcessHooks } from '../../src/cli.js';
import { Gateway, type GatewayDeps } from '../../src/gateway.js';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort } from './free-port.js';
import { MemoryPorts } from './memory-ports.js';
import { SnTestClient } from './mqttsn-client.js';

export interface OpsRun {
  gateway: Gateway;
  /** MQTT listener port. */
  port: number;
  /** http://127.0.0.1:PORT of the metrics listener. */
  http: string;
  dir: string;
  lines: Record<string, unknown>[];
  stop(): Promise<number>;
}

/**
 * `yaml` is appended to a base config (listener on port 0, JSON logs, state in a temp dir);
 * `storeYaml` adds keys to its `store:` map (e.g. "commit_delay: 1s").
 */
export async function runOutpost(yaml: string, deps: Partial<GatewayDeps> = {}, storeYaml = ''): Promise<OpsRun> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-ops-'));
  const file = join(dir, 'outpost.yaml');
  writeFileSync(file, `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nlog: { format: json }\nstore: { dir: ${JSON.stringify(join(dir, 'data'))}${storeYaml ? `, ${storeYaml}` : ''} }\n${yaml}`);
  const lines: Record<string, unknown>[] = [];
  let onSignal: ((s: string) => void) | undefined;
  const proc: ProcessHooks = { onSignal: (fn) => ((onSignal = fn), () => (onSignal = undefined)), onCrash: () => () => undefined, exitNow: () => undefined };
  let gateway: Gateway | undefined;
  let err = '';
  const done = runCli(['run', '--config', file], {
    stdout: () => undefined,
    stderr: (t) => (err += t),
    process: proc,
    logDestination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    createGateway: (c, d) => (gateway = new Gateway(c, { ...d, ...deps })),
  });
  const waitLog = async (msg: string) => {
    for (let i = 0; i < 500; i++) {
      const l = lines.find((x) => x['msg'] === msg);
      if (l) return l;
      const fatal = lines.find((x) => x['level'] === 60);
      if (fatal) throw new Error(`outpost run failed: ${String(fatal['msg'])} ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no "${msg}" log line: ${JSON.stringify(lines)} ${err}`);
  };
  const metrics = (await waitLog('metrics listening')) as unknown as { address: { port: number } };
  await waitLog('gateway started');
  return {
    gateway: gateway!,
    port: gateway!.addresses[0]!.port,
    http: `http://127.0.0.1:${metrics.address.port}`,
    dir,
    lines,
    async stop() {
      onSignal?.('SIGTERM');
      const code = await done;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** Polls `check` every 50 ms until it returns true; throws naming `what` after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface BusyGateway {
  run: OpsRun;
  /** The in-memory serial ports; /dev/ttyBOILER (a line-json device) is open. */
  ports: MemoryPorts;
  /** An MQTT-SN sensor, connected as door-sensor. */
  sn: SnTestClient;
  /** A local MQTT client, connected as dashboard. */
  client: MqttClient;
}

/**
 * A gateway with something of everything for the ops views: a line-json device on an
 * in-memory port, an MQTT-SN sensor, an MQTT client and a bridge that stays down (nothing
 * listens at its address) and buffers `sensors/#`. `metricsYaml` is its `metrics:` section;
 * everything made is stopped through `cleanups`.
 */
export async function busyGateway(metricsYaml: string, cleanups: (() => Promise<unknown> | void)[]): Promise<BusyGateway> {
  const ports = new MemoryPorts();
  ports.plug('/dev/ttyBOILER');
  const cloud = await freePort();
  const run = await runOutpost(
    [
      `metrics: ${metricsYaml}`,
      'serial: { devices: [{ id: boiler, port: /dev/ttyBOILER, driver: line-json }] }',
      'mqttsn: { hosts: [127.0.0.1], port: 0, advertise: { interval: 0 } }',
      `bridges: [{ name: cloud, url: "mqtt://127.0.0.1:${cloud}", rules: [{ pattern: "sensors/#" }], backoff: { base: 5s, cap: 5s } }]`,
      '',
    ].join('\n'),
    { serialPorts: ports },
  );
  cleanups.push(() => run.stop());
  const sn = await SnTestClient.open({ port: run.gateway.mqttsn!.addresses[0]!.port });
  cleanups.push(() => sn.close());
  await sn.connect('door-sensor', { duration: 60 });
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${run.port}`, { clientId: 'dashboard', reconnectPeriod: 0 });
  cleanups.push(() => client.endAsync());
  await eventually(() => ports.isOpen('/dev/ttyBOILER'), 'the serial port to open');
  return { run, ports, sn, client };
}
