/**
 * Fuzzing one live outpost process on all its inputs at once (issue 9): random and mutated
 * MQTT packets over real TCP connections, random and mutated MQTT-SN datagrams over real
 * UDP, and random bytes on the serial ports of a line-json and an nmea device (socat ptys).
 * Afterwards the process must still be running, serve an MQTT round trip and an MQTT-SN
 * QoS 1 publish, and once the state the fuzz legitimately created is cleared (its persistent
 * MQTT sessions and retained topics; its MQTT-SN sessions, CONNECTs with mutated client ids,
 * up to mqttsn.max_clients of them, expire after a 5 s mqttsn.session_expiry) its RSS must
 * come back near the baseline taken before it,
 * after a warm-up round of 1 % of each input (a process just started has not yet compiled
 * the code the fuzz reaches, prepared its statements or sized its buffers; that is not what
 * the fuzz leaves behind).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import mqtt from 'mqtt';
import { MsgType } from '../../../src/mqttsn/packets.js';
import { freePort } from '../../helpers/mosquitto.js';
import { buildCorpus, fuzz, FuzzConn, FUZZ_CLIENT_IDS, FUZZ_TOPICS } from '../../helpers/mqtt-fuzz.js';
import { SnTestClient } from '../../helpers/mqttsn-client.js';
import { OutpostProcess } from '../../helpers/outpost-process.js';
import { prng } from '../../helpers/prng.js';
import { PtyLab } from '../../helpers/pty.js';
import { snFuzzDatagram } from '../../helpers/sn-fuzz.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface LiveFuzzOptions {
  mqttPackets: number;
  snDatagrams: number;
  serialBytes: number;
  seed?: number;
  /** Run the built dist/src/main.js (memory figures without the tsx loader). */
  built?: boolean;
  /** How long to let the process settle before the RSS is read again. */
  settleMs?: number;
  /**
   * A first, small round of each input (this share of the counts, default 1 %) before the
   * baseline is taken: code paths compiled, statements prepared and buffers sized on first use
   * belong to a warmed gateway, not to what the fuzz leaves behind.
   */
  warmupShare?: number;
  progress?: (line: string) => void;
}

export interface LiveFuzzReport {
  mqttPackets: number;
  mqttConnections: number;
  snDatagrams: number;
  serialBytes: number;
  seconds: number;
  /** RSS right after start-up (one MQTT round trip), before the warm-up round. */
  rssColdKiB: number;
  /** RSS after the warm-up round: what the fuzz is measured against. */
  rssBaselineKiB: number;
  rssPeakKiB: number;
  rssAfterKiB: number;
  stillRunning: boolean;
  mqttRoundTrip: boolean;
  snPublishAcked: boolean;
  /** What the gateway counted as bad input, per input (from /metrics after the run). */
  counted: { mqttViolations: number; mqttsnDrops: number; serialDiscardedBytes: number; serialDecodeFailures: number };
  /** MQTT-SN sessions the fuzz's CONNECTs left (bounded by mqttsn.max_clients), after settling. */
  snSessionsLeft: number;
}

function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function mqttRoundTrip(port: number, n: number): Promise<boolean> {
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `rt-sub-${n}`, reconnectPeriod: 0, connectTimeout: 5000 });
  const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `rt-pub-${n}`, reconnectPeriod: 0, connectTimeout: 5000 });
  try {
    await sub.subscribeAsync('healthy/#', { qos: 1 });
    const got = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 5000);
      sub.on('message', (_t, p) => {
        if (p.toString() === `ok-${n}`) {
          clearTimeout(t);
          resolve(true);
        }
      });
    });
    await pub.publishAsync(`healthy/${n}`, `ok-${n}`, { qos: 1 });
    return await got;
  } finally {
    await Promise.all([sub.endAsync(true), pub.endAsync(true)]);
  }
}

/**
 * What the fuzz legitimately left behind: persistent sessions of its client ids (with their
 * bounded queues) and retained messages on its topics. A clean connect of each id ends its
 * session [MQTT-3.1.2-6]; an empty retained message clears a topic [MQTT-3.3.1-10].
 */
async function clearFuzzState(port: number): Promise<void> {
  for (const clientId of FUZZ_CLIENT_IDS) {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId, clean: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
    if (clientId === FUZZ_CLIENT_IDS[0]) for (const t of FUZZ_TOPICS) await c.publishAsync(t, '', { qos: 1, retain: true });
    await c.endAsync();
  }
}

async function snPublish(port: number): Promise<boolean> {
  const c = await SnTestClient.open({ port });
  try {
    if ((await c.connect('after-fuzz')) !== 0) return false;
    const { topicId } = await c.register('healthy/sn');
    const id = c.publish(topicId, 'x', { qos: 1 });
    return (await c.next(MsgType.PUBACK, 5000, (p) => p.msgId === id)).returnCode === 0;
  } finally {
    await c.close();
  }
}

export async function runLiveFuzz(o: LiveFuzzOptions): Promise<LiveFuzzReport> {
  const say = o.progress ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'outpost-fuzz-live-'));
  const lab = new PtyLab();
  let outpost: OutpostProcess | undefined;
  try {
    const [port, snPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const lj = await lab.pty('lj');
    const gps = await lab.pty('gps');
    const config = join(dir, 'outpost.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        listeners: [{ type: 'mqtt', host: '127.0.0.1', port }],
        log: { format: 'json', level: 'info' },
        store: { dir: join(dir, 'data') },
        metrics: { enabled: true, host: '127.0.0.1', port: metricsPort },
        broker: { max_packet_size: '64KiB', connect_timeout: '2s' },
        // session_expiry: the fuzz's sessions (mutated client ids, some persistent and subscribed,
        // buffering what matches) are state it created, cleared before the RSS is read again.
        mqttsn: { hosts: ['127.0.0.1'], port: snPort, max_clients: 1000, session_expiry: '5s', rate_limit: { datagrams_per_second: 1_000_000, burst: 1_000_000 }, qos_minus_one_sources: ['127.0.0.0/8'] },
        serial: {
          devices: [
            { id: 'lj', port: lj.path, driver: 'line-json' },
            { id: 'gps', port: gps.path, driver: 'nmea' },
          ],
        },
      }),
    );
    outpost = await OutpostProcess.start(config, { built: o.built ?? false });
    const proc = outpost;
    if (!(await mqttRoundTrip(port, 0))) throw new Error('no MQTT round trip before the fuzz');
    await sleep(2000);
    const rssColdKiB = proc.rssKiB();
    const seed = o.seed ?? 20261128;

    /** One round of every input at once: MQTT over TCP, MQTT-SN over UDP, bytes on both serial ports. */
    const blast = async (mqttPackets: number, snDatagrams: number, serialTotal: number, seed: number) => {
      // MQTT over real TCP: a pool of 16 connections, refilled as outpost closes them. The
      // sender keeps pace with what outpost has read (bytes_received), or most packets would
      // die unread in the kernel buffers of sockets the fuzz destroys.
      const sockets = new Set<net.Socket>();
      let closedBytes = 0;
      const written = (): number => closedBytes + [...sockets].reduce((n, s) => n + s.bytesWritten, 0);
      const bytesRead = async (): Promise<number> => metricSum(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(), 'outpost_bytes_received_total');
      let nextPace = 5000;
      const mqttRun = (async () => {
        const r = prng(seed);
        const all: FuzzConn[] = [];
        const stats = await fuzz(r, buildCorpus(), mqttPackets, 16, (version) => {
          const s = net.connect({ host: '127.0.0.1', port });
          s.setNoDelay(true);
          sockets.add(s);
          s.once('close', () => {
            closedBytes += s.bytesWritten;
            sockets.delete(s);
          });
          return new FuzzConn(s, version);
        }, async (sent) => {
          if (sent % 100_000 < 20) say(`mqtt ${sent} packets`);
          if (sent < nextPace) return;
          nextPace = sent + 5000;
          // Wait until outpost read nearly all of it, or stopped reading (closed connections drop their rest).
          const target = written() * 0.95;
          let last = -1;
          for (let i = 0; i < 100; i++) {
            const got = await bytesRead();
            if (got >= target || got === last) return;
            last = got;
            await sleep(20);
          }
        }, all, 2);
        // Let the last writes drain before the sockets go.
        await sleep(200);
        for (const s of sockets) s.destroy();
        all.length = 0;
        return stats;
      })();

      // MQTT-SN over real UDP from 8 sockets, paced so the kernel buffers do not just drop them.
      const snRun = (async () => {
        const rand = prng(seed + 1);
        const socks = await Promise.all(
          Array.from({ length: 8 }, () => new Promise<dgram.Socket>((resolve) => {
            const s = dgram.createSocket('udp4');
            s.on('error', () => undefined);
            s.on('message', () => undefined);
            s.bind(0, '127.0.0.1', () => resolve(s));
          })),
        );
        for (let i = 0; i < snDatagrams; i++) {
          socks[i % socks.length]!.send(snFuzzDatagram(rand), snPort, '127.0.0.1');
          if (i % 200 === 199) await sleep(1);
          if (i % 100_000 === 99_999) say(`mqtt-sn ${i + 1} datagrams`);
        }
        await sleep(200);
        for (const s of socks) s.close();
      })();

      // Serial: random bytes on both ports, 64 KiB at a time, as fast as the ptys take them.
      const serialRun = (async () => {
        const rand = prng(seed + 2);
        let sent = 0;
        const chunk = Buffer.alloc(64 * 1024);
        while (sent < serialTotal) {
          for (let i = 0; i < chunk.length; i++) chunk[i] = Math.floor(rand() * 256);
          const n = Math.min(chunk.length, serialTotal - sent);
          await Promise.all([lj.write(chunk.subarray(0, n >> 1)), gps.write(chunk.subarray(n >> 1, n))]);
          sent += n;
          if (sent % (10 * 1024 * 1024) < chunk.length) say(`serial ${(sent / 1048576).toFixed(0)} MiB`);
        }
        return sent;
      })();

      const [stats, , serialBytes] = await Promise.all([mqttRun, snRun, serialRun]);
      if (proc.running) await clearFuzzState(port).catch(() => undefined);
      return { stats, serialBytes };
    };

    const share = o.warmupShare ?? 0.01;
    if (share > 0) {
      say('warm-up round');
      await blast(Math.ceil(o.mqttPackets * share), Math.ceil(o.snDatagrams * share), Math.ceil(o.serialBytes * share), seed + 100);
      await sleep(o.settleMs ?? 10_000);
    }
    const rssBaselineKiB = proc.rssKiB();
    let rssPeakKiB = rssBaselineKiB;
    const peak = setInterval(() => {
      if (proc.running) rssPeakKiB = Math.max(rssPeakKiB, proc.rssKiB());
    }, 250);
    const t0 = performance.now();
    const { stats, serialBytes } = await blast(o.mqttPackets, o.snDatagrams, o.serialBytes, seed);
    const seconds = (performance.now() - t0) / 1000;
    await sleep(o.settleMs ?? 10_000);
    clearInterval(peak);
    const stillRunning = proc.running;
    const rssAfterKiB = stillRunning ? proc.rssKiB() : NaN;
    const mqttOk = stillRunning && (await mqttRoundTrip(port, 1).catch(() => false));
    const snOk = stillRunning && (await snPublish(snPort).catch(() => false));
    const m = stillRunning ? await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text() : '';
    return {
      mqttPackets: stats.packets,
      mqttConnections: stats.connections,
      snDatagrams: o.snDatagrams,
      serialBytes,
      seconds,
      rssColdKiB,
      rssBaselineKiB,
      rssPeakKiB,
      rssAfterKiB,
      stillRunning,
      mqttRoundTrip: mqttOk,
      snPublishAcked: snOk,
      snSessionsLeft: metricSum(m, 'outpost_mqttsn_sensors'),
      counted: {
        mqttViolations: metricSum(m, 'outpost_protocol_violations_total'),
        mqttsnDrops: metricSum(m, 'outpost_mqttsn_dropped_total'),
        serialDiscardedBytes: metricSum(m, 'outpost_serial_discarded_bytes_total'),
        serialDecodeFailures: metricSum(m, 'outpost_serial_decode_failures_total') + metricSum(m, 'outpost_serial_checksum_failures_total'),
      },
    };
  } finally {
    await outpost?.stop(5000).catch(() => undefined);
    await lab.cleanup().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function liveFuzzTable(r: LiveFuzzReport): string {
  const mib = (k: number): string => (k / 1024).toFixed(1);
  return [
    '| input | amount |',
    '|---|---|',
    `| MQTT packets (random and mutated, TCP) | ${r.mqttPackets.toLocaleString('en')} over ${r.mqttConnections.toLocaleString('en')} connections |`,
    `| MQTT-SN datagrams (UDP) | ${r.snDatagrams.toLocaleString('en')} |`,
    `| serial bytes (line-json + nmea ptys) | ${(r.serialBytes / 1048576).toFixed(1)} MiB |`,
    '',
    `fuzz time ${r.seconds.toFixed(1)} s; still running: ${r.stillRunning}; MQTT round trip after: ${r.mqttRoundTrip}; MQTT-SN QoS 1 publish after: ${r.snPublishAcked}; ` +
      `counted: ${r.counted.mqttViolations.toLocaleString('en')} MQTT protocol violations, ${r.counted.mqttsnDrops.toLocaleString('en')} MQTT-SN drops, ` +
      `${r.counted.serialDiscardedBytes.toLocaleString('en')} serial bytes discarded and ${r.counted.serialDecodeFailures.toLocaleString('en')} serial frames refused`,
    `MQTT-SN sessions left by the fuzz's CONNECTs: ${r.snSessionsLeft} (max_clients 1000)`,
    `RSS right after start ${mib(r.rssColdKiB)} MiB; after a warm-up round of 1 % of each input (the baseline) ${mib(r.rssBaselineKiB)} MiB, peak ${mib(r.rssPeakKiB)} MiB, after settling ${mib(r.rssAfterKiB)} MiB (${(((r.rssAfterKiB - r.rssBaselineKiB) / r.rssBaselineKiB) * 100).toFixed(1)} % over the baseline)`,
  ].join('\n');
}
