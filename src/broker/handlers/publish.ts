/**
 * PUBLISH from a client (§3.3, §4.3). Resolves the topic (alias), validates it, routes
 * the message, and acknowledges QoS 1/2 only once the broker accepted it, durable
 * sinks (the bridge outbox) included: persist before you acknowledge.
 */
import { isUtf8 } from 'node:buffer';
import { encodeAck, type IPublishPacket } from '../../mqtt/codec.js';
import type { Connection, Violation } from '../connection.js';
import { validateTopicName } from '../../core/topic.js';
import { isOutpostError } from '../../core/errors.js';
import type { Message } from '../../core/message.js';
import { V5_REASON } from '../reason-codes.js';
import { badlyEncoded } from './wire-strings.js';
import type { Session } from '../session.js';
import { pickMessageProps } from '../../mqtt/properties.js';

export function handlePublish(conn: Connection, p: IPublishPacket, raw: Buffer): Violation | undefined {
  const ctx = conn.ctx;
  const opts = ctx.options;
  const v5 = conn.version === 5;
  const props = p.properties;
  let topic = p.topic;

  // DUP is for resending QoS 1/2; on QoS 0 it is a malformed packet [MQTT-3.3.1-2].
  if (p.qos === 0 && p.dup) return { outcome: 'malformed-packet', detail: 'QoS 0 PUBLISH with the DUP flag set' };
  // QoS 1/2 PUBLISH needs a non-zero Packet Identifier [MQTT-2.3.1-1] (v5 [MQTT-2.2.1-3]).
  if (p.qos > 0 && !p.messageId) return { outcome: 'protocol-error', detail: 'PUBLISH with packet id 0' };

  // A Subscription Identifier is the server's to add; from a client it is a Protocol Error [MQTT-3.3.4-6].
  if (v5 && props?.subscriptionIdentifier !== undefined) return { outcome: 'protocol-error', detail: 'PUBLISH from a client with a subscription identifier' };
  // The Response Topic is a topic name: no wildcards [MQTT-3.3.2-14].
  if (v5 && props?.responseTopic !== undefined && !validateTopicName(props.responseTopic).ok) {
    return { outcome: 'protocol-error', detail: 'PUBLISH with a response topic that is not a valid topic name' };
  }

  if (v5 && props?.topicAlias !== undefined) {
    const alias = props.topicAlias;
    // 0 or above our Topic Alias Maximum is an error [MQTT-3.3.2-8/-9].
    if (alias === 0 || alias > opts.topicAliasMaximum) return { outcome: 'topic-alias-invalid', detail: `topic alias ${alias} out of range` };
    conn.inAliases ??= new Map();
    if (topic.length > 0) conn.inAliases.set(alias, topic);
    else {
      const known = conn.inAliases.get(alias);
      if (known === undefined) return { outcome: 'protocol-error', detail: `topic alias ${alias} was never set` };
      topic = known;
    }
  }

  if (p.topic.length > 0 && badlyEncoded(p.topic, raw)) {
    return { outcome: 'malformed-packet', detail: 'PUBLISH topic: ill-formed UTF-8 or U+0000' };
  }
  // An empty topic without a Topic Alias is a Protocol Error in v5 (§3.3.2.1).
  if (v5 && topic.length === 0) return { outcome: 'protocol-error', detail: 'PUBLISH with an empty topic and no topic alias' };
  const check = validateTopicName(topic, opts.maxTopicLevels);
  // Wildcards in a topic name [MQTT-3.3.2-2], empty or too deep topics.
  if (!check.ok) return { outcome: 'topic-name-invalid', detail: `PUBLISH topic: ${check.reason}` };
  if (p.retain && !opts.retainAvailable) return { outcome: 'retain-not-supported', detail: 'retain is not available' };

  const qos = p.qos;
  const id = p.messageId ?? 0;
  if (qos > 0) {
    const session = conn.session!;
    if (qos === 2 && session.qos2In.has(id)) {
      // Already received, PUBREL not yet: answer again without delivering twice [MQTT-4.3.3-9].
      if (!p.dup) return { outcome: 'protocol-error', detail: `packet id ${id} reused before PUBCOMP` };
      const running = session.qos2Commits?.get(id);
      if (running !== undefined) ackAfterCommit(conn, session, 'pubrec', id, running, topic);
      else queueAck(conn, 'pubrec', id, 0);
      return undefined;
    }
    if (qos === 1 && conn.qos1Pending?.has(id)) {
      if (!p.dup) return { outcome: 'protocol-error', detail: `packet id ${id} reused before PUBACK` };
      return undefined; // the PUBACK is on its way
    }
    // Acknowledgements waiting for a commit: past a few, stop reading the socket until the
    // commits catch up (TCP backpressure). 3.1.1 has no Receive Maximum, and MQTT 5 clients
    // that ignore ours (MQTT.js, so Node-RED) burst past it: the rest of the read already in
    // hand still counts below, but nothing more is read. Only commits count here: the PUBRELs
    // a client owes us must still be read.
    if ((conn.acks?.length ?? 0) >= pauseAt(opts)) conn.pauseReading();
    if (v5) {
      const inflight = (conn.qos1Pending?.size ?? 0) + session.qos2In.size;
      if (inflight >= opts.receiveMaximum) {
        return { outcome: 'receive-maximum-exceeded', detail: `more than ${opts.receiveMaximum} unacknowledged QoS 1/2 publishes` };
      }
    }
  }

  if (isGatewayTopic(topic)) {
    denyPublish(conn, topic, qos, id, 'is reserved for the gateway ($SYS)');
    return undefined;
  }
  if (!conn.grants.canWrite(topic)) {
    denyPublish(conn, topic, qos, id, 'denied by the ACL');
    return undefined;
  }

  const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload;
  if (v5 && props?.payloadFormatIndicator && !isUtf8(payload)) {
    // The payload is said to be UTF-8 and is not (§3.3.2.3.2): refuse it, keep the client.
    ctx.metrics.violation('payload-format-invalid');
    if (qos > 0) queueAck(conn, qos === 1 ? 'puback' : 'pubrec', id, V5_REASON['payload-format-invalid']);
    return undefined;
  }

  const msg: Message = { topic, payload, qos, retain: p.retain, origin: { kind: 'mqtt', id: conn.clientId } };
  if (v5 && props !== undefined) {
    const mp = pickMessageProps(props);
    if (mp !== undefined) msg.properties = mp;
    if (props.messageExpiryInterval !== undefined) msg.expiresAt = ctx.clock.now() + props.messageExpiryInterval * 1000;
  }

  let wait: Promise<void> | undefined;
  try {
    wait = ctx.publish(msg);
  } catch (err) {
    conn.log.error({ err, topic }, 'publish failed');
    if (qos > 0) failAck(conn, qos as 1 | 2, id, err);
    return undefined;
  }
  if (qos === 0) return undefined;
  const cmd = qos === 1 ? 'puback' : 'pubrec';
  // Kept from here: the connection may have dropped (and left its session) by the time
  // the commit settles, and the session's QoS 2 state must still be undone then.
  const session = conn.session!;
  if (qos === 2) {
    session.addQos2In(id);
    // A persistent session's QoS 2 packet id is stored before PUBREC: a resend after a
    // restart is then answered, not delivered twice [MQTT-4.3.3-9].
    const stored = session.journal?.committed(msg.origin);
    if (stored !== undefined) wait = wait === undefined ? stored : Promise.all([wait, stored]).then(() => undefined);
  }
  if (wait === undefined) {
    queueAck(conn, cmd, id, 0);
    return undefined;
  }
  if (qos === 2) {
    const map = (session.qos2Commits ??= new Map());
    map.set(id, wait);
    const settled = () => {
      if (map.get(id) === wait) map.delete(id);
    };
    wait.then(settled, settled);
  }
  ackAfterCommit(conn, session, cmd, id, wait, topic);
  return undefined;
}

/**
 * `$SYS/...` carries what the gateway says about itself (bridge and serial device states,
 * counters), retained: a client writing there could pass for it, e.g. show a bridge or a
 * device as online. Clients are kept out of it whatever the ACL says, as mosquitto does
 * (MQTT 5 §4.7.2: the server SHOULD prevent clients from using `$` topics to exchange messages).
 */
export function isGatewayTopic(topic: string): boolean {
  return topic === '$SYS' || topic.startsWith('$SYS/');
}

/**
 * A PUBLISH the ACL refuses (or to a $SYS topic) is not routed (nor retained). MQTT 5
 * tells the client with reason 0x87 on PUBACK/PUBREC [MQTT-3.4.2-1]; 3.1.1 has no negative
 * ack, so the flow is completed as the protocol requires (PUBACK, or PUBREC then PUBCOMP)
 * and the message dropped. QoS 0 is dropped either way. Counted and logged rate-limited.
 */
function denyPublish(conn: Connection, topic: string, qos: 0 | 1 | 2, id: number, why: string): void {
  conn.ctx.metrics.denial('publish');
  conn.ctx.warn(conn, 'publish-denied', `publish to "${topic}" ${why}`);
  if (qos === 0) return;
  const cmd = qos === 1 ? 'puback' : 'pubrec';
  if (conn.version === 5) return queueAck(conn, cmd, id, V5_REASON['not-authorized']);
  if (qos === 2) conn.session!.qos2In.add(id); // so its PUBREL gets a PUBCOMP
  queueAck(conn, cmd, id, 0);
}

/** Acknowledges only after the durable sinks committed the message, in PUBLISH order. */
function ackAfterCommit(conn: Connection, session: Session, cmd: 'puback' | 'pubrec', id: number, wait: Promise<void>, topic: string): void {
  if (cmd === 'puback') (conn.qos1Pending ??= new Set()).add(id);
  const slot: { cmd: 'puback' | 'pubrec'; id: number; code: number | undefined } = { cmd, id, code: undefined };
  (conn.acks ??= []).push(slot);
  wait.then(
    () => {
      slot.code = 0;
      conn.qos1Pending?.delete(id);
      releaseAcks(conn);
    },
    (err: unknown) => {
      conn.qos1Pending?.delete(id);
      // Not stored: a resend of this packet id must be taken as new, not answered as a
      // duplicate of something we never kept [MQTT-4.3.3-9].
      if (cmd === 'pubrec') session.removeQos2In(id);
      if (conn.version !== 5) {
        // 3.1.1 has no negative ack: leave it unacknowledged and close, so the client
        // resends it after reconnecting.
        // Rate-limited: every publish in flight on the connection is refused the same way.
        conn.ctx.warn(conn, 'store-refused', `message to "${topic}" not accepted by the store (${String(err)}); closing so the client resends`);
        conn.end();
        return;
      }
      slot.code = isOutpostError(err, 'STORE_FULL') ? V5_REASON['quota-exceeded'] : V5_REASON['unspecified-error'];
      releaseAcks(conn);
    },
  );
}

function failAck(conn: Connection, qos: 1 | 2, id: number, err: unknown): void {
  if (conn.version !== 5) {
    conn.end();
    return;
  }
  const code = isOutpostError(err, 'STORE_FULL') ? V5_REASON['quota-exceeded'] : V5_REASON['unspecified-error'];
  queueAck(conn, qos === 1 ? 'puback' : 'pubrec', id, code);
}

/** Acknowledgements waiting for a commit at which a client's socket is no longer read. */
const ACKS_BEFORE_PAUSE = 100;
const pauseAt = (opts: { receiveMaximum: number }): number => Math.min(opts.receiveMaximum, ACKS_BEFORE_PAUSE);

/** Sends now, or behind acknowledgements still waiting for a commit. */
export function queueAck(conn: Connection, cmd: 'puback' | 'pubrec', id: number, code: number): void {
  if (conn.acks === undefined || conn.acks.length === 0) return sendAck(conn, cmd, id, code);
  conn.acks.push({ cmd, id, code });
}

function releaseAcks(conn: Connection): void {
  const q = conn.acks;
  if (q === undefined) return;
  let n = 0;
  while (n < q.length && q[n]!.code !== undefined) {
    const a = q[n]!;
    sendAck(conn, a.cmd, a.id, a.code!);
    n++;
  }
  if (n > 0) q.splice(0, n);
  if (q.length < pauseAt(conn.ctx.options)) conn.resumeReading();
}

function sendAck(conn: Connection, cmd: 'puback' | 'pubrec', id: number, code: number): void {
  if (code >= 0x80 && cmd === 'pubrec') conn.session?.removeQos2In(id);
  if (conn.version === 5 && code !== 0) conn.send({ cmd, messageId: id, reasonCode: code });
  else conn.writeRaw(encodeAck(cmd, id));
}
