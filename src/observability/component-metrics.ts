/**
 * The metric families of the components beside the broker and the bridges: messages in and
 * out per source, serial devices, MQTT-SN sensors, the SQLite files and what the process
 * wrote to storage. Read through structural views; a gateway without a part leaves its
 * families out.
 */
import type { SourceKind } from '../core/message.js';
import type { PromText, Sample } from './prometheus.js';

export interface SerialView {
  devices(): readonly { id: string; online: boolean; counters: Readonly<Record<string, number>> }[];
}

export interface MqttsnView {
  sensorsByState(): Record<string, number>;
  readonly sendErrors: number;
  readonly metrics: {
    readonly datagramsIn: number;
    readonly datagramsOut: number;
    readonly publishIn: number;
    readonly publishOut: number;
    readonly drops: Iterable<[string, number]>;
  };
}

export interface ComponentsView {
  readonly broker: { readonly metrics: { readonly messagesOut: number; readonly messagesBySource?: Readonly<Record<SourceKind, number>> } };
  readonly bridges: readonly { readonly name: string; readonly outbound?: number }[];
  readonly serial?: SerialView;
  readonly mqttsn?: MqttsnView | undefined;
  storeFiles?(): { db: number; wal: number; commits?: number } | undefined;
}

/** Source kinds as operators name them: what the bridge brings in comes from the cloud. */
const SOURCE_LABEL: Record<SourceKind, string> = { mqtt: 'mqtt', serial: 'serial', mqttsn: 'mqttsn', bridge: 'bridge-inbound', system: 'system' };

export function addComponentFamilies(p: PromText, gw: ComponentsView, storageWrittenBytes: number | undefined): void {
  const bySource = gw.broker.metrics.messagesBySource;
  if (bySource !== undefined) {
    p.family('outpost_messages_in_total', 'counter', 'Messages published into the gateway, by source (bridge-inbound: brought in from a cloud broker).',
      (Object.keys(SOURCE_LABEL) as SourceKind[]).map((k) => ({ labels: { source: SOURCE_LABEL[k] }, value: bySource[k] })));
  }
  const out: Sample[] = [{ labels: { destination: 'mqtt' }, value: gw.broker.metrics.messagesOut }];
  if (gw.mqttsn !== undefined) out.push({ labels: { destination: 'mqttsn' }, value: gw.mqttsn.metrics.publishOut });
  for (const b of gw.bridges) if (b.outbound !== undefined) out.push({ labels: { destination: `bridge:${b.name}` }, value: b.outbound });
  p.family('outpost_messages_out_total', 'counter', 'Messages sent out, by destination: MQTT clients, MQTT-SN sensors, each bridge to its cloud broker.', out);

  const devices = gw.serial?.devices() ?? [];
  p.family('outpost_serial_device_online', 'gauge', '1 while the serial device port is open and working.', devices.map((d) => ({ labels: { device: d.id }, value: d.online ? 1 : 0 })));
  const counterNames = devices.length === 0 ? [] : Object.keys(devices[0]!.counters);
  for (const c of counterNames) {
    p.family(`outpost_serial_${c}_total`, 'counter', `Serial device counter: ${c.replace(/_/g, ' ')}.`,
      devices.map((d) => ({ labels: { device: d.id }, value: d.counters[c] ?? 0 })));
  }

  if (gw.mqttsn !== undefined) {
    const sn = gw.mqttsn;
    p.family('outpost_mqttsn_sensors', 'gauge', 'MQTT-SN sensors (sessions) by state.', Object.entries(sn.sensorsByState()).map(([state, value]) => ({ labels: { state }, value })))
      .one('outpost_mqttsn_datagrams_received_total', 'counter', 'MQTT-SN datagrams received.', sn.metrics.datagramsIn)
      .one('outpost_mqttsn_datagrams_sent_total', 'counter', 'MQTT-SN datagrams sent.', sn.metrics.datagramsOut)
      .one('outpost_mqttsn_send_errors_total', 'counter', 'MQTT-SN datagrams the operating system refused to send (no route, a firewall, no socket of the address family).', sn.sendErrors)
      .family('outpost_mqttsn_dropped_total', 'counter', 'MQTT-SN datagrams and messages dropped, by reason.', [...sn.metrics.drops].map(([reason, value]) => ({ labels: { reason }, value })));
  }

  const files = gw.storeFiles?.();
  if (files !== undefined) {
    p.family('outpost_sqlite_file_bytes', 'gauge', 'Size of the SQLite database file and its write-ahead log.', [
      { labels: { file: 'db' }, value: files.db },
      { labels: { file: 'wal' }, value: files.wal },
    ]);
    // Each commit appends whole pages to the WAL (and fsyncs it with synchronous=full): with
    // the bytes written, the figure behind the flash wear of a site.
    if (files.commits !== undefined) p.one('outpost_store_commits_total', 'counter', 'Transactions committed to the SQLite store (group commits of the outbox and the persistent state).', files.commits);
  }
  if (storageWrittenBytes !== undefined) {
    p.one('outpost_storage_written_bytes_total', 'counter', 'Bytes the process caused to be written to storage (Linux /proc/self/io write_bytes: SQLite WAL and checkpoints).', storageWrittenBytes);
  }
}
