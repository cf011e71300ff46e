// The floor of the paced bridge benchmark: the least a Node.js process must do to carry the
// paced load through the same packages outpost uses, and nothing more. It is not a broker: no
// sessions, no ACL, no keepalive, no retained messages, no flow control, no metrics, no
// reconnects, no recovery. It reads one JSON config written by bridge-procs.ts's startOutpost:
//
//   MQTT 3.1.1 clients ──mqtt-packet──▶ group commit to SQLite (WAL, synchronous FULL) ──▶ PUBACK
//                                        └─▶ PUBLISH (MQTT 5, QoS 1) over mTLS ──▶ cloud
//   cloud PUBACK ──▶ DELETE of the row in the next group commit
//
// Its CPU at a given rate is what the runtime and the packages cost for that rate on this host;
// what outpost spends above it is outpost's own work. Run through paced-bench.ts (--floor).
import { mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import Database from 'better-sqlite3';
import mqttPacket, { type Packet } from 'mqtt-packet';

interface BenchConfig {
  listeners: { host: string; port: number }[];
  store: { dir: string };
  bridges: { url: string; ca: string; cert: string; key: string; client_id: string }[];
}

interface Pending {
  topic: string;
  payload: Buffer;
  socket: net.Socket;
  messageId: number;
  row: number;
}

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as BenchConfig;
const listener = config.listeners[0]!;
const bridge = config.bridges[0]!;

mkdirSync(config.store.dir, { recursive: true });
const db = new Database(path.join(config.store.dir, 'floor.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL)');
const insert = db.prepare<[string, Buffer]>('INSERT INTO outbox (topic, payload, qos) VALUES (?, ?, 1)');
const remove = db.prepare<[number]>('DELETE FROM outbox WHERE seq = ?');
const commit = db.transaction((batch: Pending[], acked: number[]) => {
  for (const m of batch) m.row = Number(insert.run(m.topic, m.payload).lastInsertRowid);
  for (const row of acked) remove.run(row);
});

const cloudUrl = new URL(bridge.url);
const cloud = tls.connect({
  host: cloudUrl.hostname,
  port: Number(cloudUrl.port),
  ca: readFileSync(bridge.ca),
  cert: readFileSync(bridge.cert),
  key: readFileSync(bridge.key),
});
const cloudParser = mqttPacket.parser({ protocolVersion: 5 });
let cloudUp = false;
let nextId = 1;
/** packet id at the cloud → outbox row */
const inflight = new Map<number, number>();
let acked: number[] = [];
cloud.on('secureConnect', () => {
  cloud.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: bridge.client_id, clean: true, keepalive: 60 }));
});
cloud.on('data', (chunk: Buffer) => cloudParser.parse(chunk));
cloud.on('error', (e) => console.error(`floor: cloud: ${e.message}`));
cloudParser.on('packet', (p: Packet) => {
  if (p.cmd === 'connack') cloudUp = true;
  else if (p.cmd === 'puback' && p.messageId !== undefined) {
    const row = inflight.get(p.messageId);
    inflight.delete(p.messageId);
    if (row !== undefined) acked.push(row);
  }
});

let pending: Pending[] = [];
let scheduled = false;
/** One group commit every 5 ms at most, as a commit window does. */
function flush(): void {
  scheduled = false;
  const batch = pending;
  const done = acked;
  pending = [];
  acked = [];
  commit(batch, done);
  const out: Buffer[] = [];
  for (const m of batch) {
    m.socket.write(mqttPacket.generate({ cmd: 'puback', messageId: m.messageId }));
    if (!cloudUp) continue;
    const id = nextId;
    nextId = nextId === 65535 ? 1 : nextId + 1;
    inflight.set(id, m.row);
    out.push(mqttPacket.generate({ cmd: 'publish', topic: `sites/17/${m.topic}`, payload: m.payload, qos: 1, messageId: id, retain: false, dup: false }, { protocolVersion: 5 }));
  }
  if (out.length > 0) cloud.write(out.length === 1 ? out[0]! : Buffer.concat(out));
}

net
  .createServer((socket) => {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', () => undefined);
    parser.on('packet', (p: Packet) => {
      if (p.cmd === 'connect') socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }));
      else if (p.cmd === 'publish' && p.qos === 1) {
        pending.push({ topic: p.topic, payload: p.payload as Buffer, socket, messageId: p.messageId!, row: 0 });
        if (!scheduled) {
          scheduled = true;
          setTimeout(flush, 5);
        }
      } else if (p.cmd === 'pingreq') socket.write(mqttPacket.generate({ cmd: 'pingresp' }));
      else if (p.cmd === 'disconnect') socket.end();
    });
  })
  .listen(listener.port, listener.host);

process.on('SIGTERM', () => {
  db.close();
  process.exit(0);
});
