/**
 * CONNECT → CONNACK (§3.1, §3.2). Validates the request, authenticates the client, opens
 * or takes over the session, answers with the limits the client must respect and starts
 * keepalive.
 *
 *   CONNECT ─ checks ─┬─ user name + password file ─▶ [authenticating: reads paused]
 *                     │      └─ scrypt (VerifyQueue) ─┬─ ok ─────────▶ admit ─▶ CONNACK 0
 *                     │                               └─ wrong/unknown ─ failure_delay ─▶ CONNACK 4 / 0x86
 *                     ├─ certificate identity ───────────────────────▶ admit
 *                     └─ anonymous ─ refused beyond loopback (safe default), else admit
 */
import { isUtf8 } from 'node:buffer';
import type { IConnectPacket, IConnackPacket } from '../../mqtt/codec.js';
import type { Connection, Violation } from '../connection.js';
import { V5_REASON, v3ConnackCode, describe, type Outcome } from '../reason-codes.js';
import { badlyEncoded } from './wire-strings.js';
import { pickMessageProps } from '../../mqtt/properties.js';
import { validateTopicName } from '../../core/topic.js';
import type { Message, QoS } from '../../core/message.js';
import { applyReadGrants } from '../read-guard.js';
import { isGatewayTopic } from './publish.js';

export function handleConnect(conn: Connection, p: IConnectPacket, raw: Buffer): Violation | undefined {
  const ctx = conn.ctx;
  const opts = ctx.options;
  conn.version = (p.protocolVersion ?? 4) as 3 | 4 | 5;
  const v5 = conn.version === 5;

  // Client identifier rules (§3.1.3.1).
  let clientId = p.clientId ?? '';
  let assigned: string | undefined;
  if (clientId.length === 0) {
    // 3.1.1: an empty id is only allowed with CleanSession=1 [MQTT-3.1.3-7/-8].
    if ((!v5 && !p.clean) || !opts.allowEmptyClientId) return refuse(conn, 'client-identifier-not-valid', 'empty client id');
    clientId = ctx.newClientId();
    if (v5) assigned = clientId; // Assigned Client Identifier [MQTT-3.2.2-16]
  }
  if (badlyEncoded(clientId, raw)) return refuse(conn, 'client-identifier-not-valid', 'client id is not well-formed UTF-8');

  // Enhanced authentication (§4.12) is not offered: a client that asks for a method is
  // refused with 0x8C and closed [MQTT-4.12.0-1], never admitted as if it had succeeded.
  if (v5 && p.properties?.authenticationMethod !== undefined) {
    return refuse(conn, 'bad-authentication-method', `authentication method "${p.properties.authenticationMethod.slice(0, 64)}" is not supported`);
  }

  // Password without user name is not allowed in 3.1.1 [MQTT-3.1.2-22]: a CONNECT that does
  // not conform to §3.1 is closed without CONNACK [MQTT-3.1.4-1], as a Will Retain without Will.
  if (!v5 && p.password !== undefined && p.username === undefined) {
    return { outcome: 'malformed-packet', detail: 'password flag without user name flag (3.1.1)' };
  }

  const access = ctx.access;
  const identity = conn.peer.identity;
  // A certificate identity (use_identity_as_username) is the user name; no password is checked.
  if (identity !== undefined) return admit(conn, p, raw, clientId, assigned, identity);
  if (p.username !== undefined && access.authenticates) {
    const user = p.username;
    const password = p.password === undefined ? Buffer.alloc(0) : Buffer.from(p.password);
    return authenticate(conn, user, password, () => admit(conn, p, raw, clientId, assigned, user));
  }
  // Safe default: a listener reachable from the network admits only authenticated clients;
  // a user name alone proves nothing without a password file to check it.
  if (conn.peer.refuseAnonymous) {
    return p.username === undefined
      ? refuse(conn, 'not-authorized', 'anonymous clients are refused on this listener (auth.allow_anonymous is false)')
      : refuse(conn, 'bad-username-or-password', 'no password file (auth.password_file) to check the user name against');
  }
  // Anonymous (an unchecked user name is not trusted as an identity for the ACL).
  return admit(conn, p, raw, clientId, assigned, undefined);
}

/**
 * Checks the password off the main thread with reads paused. A wrong password and an
 * unknown user cost the same scrypt and the same failure_delay: no timing oracle.
 */
function authenticate(conn: Connection, user: string, password: Buffer, onAccepted: () => Violation | undefined): undefined {
  const ctx = conn.ctx;
  const access = ctx.access;
  conn.beginAuthentication();
  const job = async () => {
    let ok = false;
    try {
      ok = await access.passwords!.verify(user, password);
    } catch (err) {
      conn.log.error({ err }, 'password verification failed');
    }
    if (conn.state !== 'authenticating') return; // the client left meanwhile: nothing to answer
    // A reload during the check that deleted the user or changed the password refuses it too.
    if (ok && ctx.access !== access && !ctx.access.keepsPasswordUser(user, access)) ok = false;
    if (ok) {
      const v = onAccepted();
      if (v !== undefined) conn.violate(v);
      conn.endAuthentication();
      return;
    }
    ctx.metrics.authFailures++;
    conn.authTimer = ctx.clock.setTimeout(() => {
      conn.authTimer = undefined;
      if (conn.state !== 'authenticating') return;
      refuse(conn, 'bad-username-or-password', `user name or password refused (user "${user.slice(0, 64)}")`);
      conn.endAuthentication();
    }, access.failureDelayMs);
  };
  if (!ctx.verifyQueue.submit(job, () => conn.state !== 'authenticating', conn.peer.remoteAddress)) {
    refuse(conn, 'server-busy', 'too many password checks waiting');
    conn.endAuthentication();
  }
  return undefined;
}

/** The client is who it says (or anonymous and allowed): the rest of CONNECT. */
function admit(conn: Connection, p: IConnectPacket, raw: Buffer, clientId: string, assigned: string | undefined, user: string | undefined): Violation | undefined {
  const ctx = conn.ctx;
  const opts = ctx.options;
  const v5 = conn.version === 5;
  const props = p.properties ?? {};
  const grants = ctx.access.grantsFor({ kind: 'mqtt', id: clientId, user });

  // Will (§3.1.2.5, §3.1.3.2).
  let will: Connection['will'];
  if (p.will) {
    // Will QoS 3 is malformed [MQTT-3.1.2-14] (v5 [MQTT-3.1.2-12]).
    if ((p.will.qos as number) === 3) return { outcome: 'malformed-packet', detail: 'Will QoS 3' };
    if (badlyEncoded(p.will.topic, raw)) return { outcome: 'malformed-packet', detail: 'will topic: ill-formed UTF-8 or U+0000' };
    const check = validateTopicName(p.will.topic, opts.maxTopicLevels);
    if (!check.ok) return refuse(conn, 'topic-name-invalid', `will topic: ${check.reason}`);
    if (isGatewayTopic(p.will.topic)) {
      ctx.metrics.denial('will');
      return refuse(conn, 'not-authorized', `the will topic "${p.will.topic}" is reserved for the gateway ($SYS)`);
    }
    // A Will the client may not publish is refused now, not dropped silently at its death.
    if (!grants.canWrite(p.will.topic)) {
      ctx.metrics.denial('will');
      return refuse(conn, 'not-authorized', `the ACL does not let this client write its will topic "${p.will.topic}"`);
    }
    if (p.will.retain && !opts.retainAvailable) return refuse(conn, 'retain-not-supported', 'retained will not available');
    const wp = p.will.properties ?? {};
    const payload = typeof p.will.payload === 'string' ? Buffer.from(p.will.payload) : (p.will.payload ?? Buffer.alloc(0));
    if (wp.payloadFormatIndicator && !isUtf8(payload)) {
      // The server may check the format it was told (§3.1.3.2.3) and refuse with 0x99.
      return refuse(conn, 'payload-format-invalid', 'will payload is marked UTF-8 but is not');
    }
    const msg: Message = {
      topic: p.will.topic,
      payload,
      qos: (p.will.qos ?? 0) as QoS,
      retain: p.will.retain ?? false,
      origin: { kind: 'mqtt', id: clientId },
    };
    if (v5) {
      const mp = pickMessageProps(wp);
      if (mp !== undefined) msg.properties = mp;
    }
    will = { msg, delay: v5 ? (wp.willDelayInterval ?? 0) : 0, expiry: v5 ? wp.messageExpiryInterval : undefined, keepalive: 0, user };
  }

  // Keep Alive, possibly overridden by Server Keep Alive (§3.2.2.3.14).
  let keepalive = p.keepalive ?? 0;
  let serverKeepAlive: number | undefined;
  if (v5 && opts.maxKeepalive > 0 && (keepalive === 0 || keepalive > opts.maxKeepalive)) {
    keepalive = opts.maxKeepalive;
    serverKeepAlive = keepalive;
  }

  // Session expiry: v5 property, or 3.1.1 CleanSession=0 meaning "keep it" (capped).
  let expiry: number;
  let expiryAnnounce: number | undefined;
  if (v5) {
    const requested = props.sessionExpiryInterval ?? 0;
    expiry = Math.min(requested, opts.maxSessionExpiry);
    if (expiry !== requested) expiryAnnounce = expiry;
  } else {
    expiry = p.clean ? 0 : opts.maxSessionExpiry;
  }

  if (v5) {
    if (props.receiveMaximum === 0) return { outcome: 'protocol-error', detail: 'Receive Maximum of 0 (§3.1.2.11.3)' };
    if (props.maximumPacketSize === 0) return { outcome: 'protocol-error', detail: 'Maximum Packet Size of 0' };
    conn.clientReceiveMaximum = props.receiveMaximum ?? 65535;
    conn.clientMaxPacketSize = props.maximumPacketSize ?? Number.POSITIVE_INFINITY;
    conn.clientTopicAliasMax = props.topicAliasMaximum ?? 0;
    conn.requestProblemInfo = props.requestProblemInformation !== false;
  }

  conn.clientId = clientId;
  conn.user = user;
  conn.grants = grants;
  if (will !== undefined) will.keepalive = keepalive;
  conn.will = will;
  const { session, present, stored } = ctx.openSession(conn, clientId, p.clean !== false, expiry);
  session.protocolVersion = conn.version;
  session.expiryInterval = expiry;
  session.user = user;
  // A resumed session's subscriptions now read with this client's rights, and so does what
  // it holds: taken with its previous client's (another user, an older ACL).
  if (present) {
    const guard = applyReadGrants(session.subscriptions.values(), grants);
    const withheld = guard === undefined ? 0 : session.withhold((topic) => guard.canRead(topic)).length;
    if (withheld > 0) {
      for (let i = 0; i < withheld; i++) ctx.metrics.denial('delivery');
      conn.log.info({ withheld }, 'messages held for the session that this client may not read dropped');
    }
  }
  conn.session = session;

  const connack: IConnackPacket = { cmd: 'connack', sessionPresent: present };
  if (v5) {
    connack.reasonCode = 0;
    const cp: NonNullable<IConnackPacket['properties']> = {
      receiveMaximum: opts.receiveMaximum,
      maximumPacketSize: opts.maxPacketSize,
      topicAliasMaximum: opts.topicAliasMaximum,
    };
    if (!opts.retainAvailable) cp.retainAvailable = false;
    if (assigned !== undefined) cp.assignedClientIdentifier = assigned;
    if (expiryAnnounce !== undefined) cp.sessionExpiryInterval = expiryAnnounce;
    if (serverKeepAlive !== undefined) cp.serverKeepAlive = serverKeepAlive;
    if (props.requestResponseInformation) cp.responseInformation = `outpost/response/${clientId}`;
    connack.properties = cp;
  } else {
    connack.returnCode = 0;
  }
  const answer = (): void => {
    conn.send(connack);
    ctx.metrics.connectionsAccepted++;
    conn.connected(keepalive);
    conn.log.info({ version: conn.version, clean: p.clean !== false, keepalive, sessionPresent: present, ...(user !== undefined ? { user } : {}) }, 'client connected');
    session.attach(conn);
  };
  if (stored === undefined) {
    answer();
    return undefined;
  }
  // The stored session it discarded must be gone from the file before CONNACK says so
  // [MQTT-3.1.2-4]: meanwhile packets behind CONNECT are held, as during a password check.
  conn.beginAuthentication();
  const settle = (ok: boolean): void => {
    if (conn.state !== 'authenticating') {
      ctx.abandonSession(conn, session); // the client left meanwhile
      return;
    }
    if (ok && ctx.isVacant(session)) answer();
    else if (ok) conn.end(); // a newer connection of the client took the session meanwhile
    else {
      conn.log.warn('discarded session not stored; closing so the client connects again');
      conn.end();
      ctx.abandonSession(conn, session);
    }
    conn.endAuthentication();
  };
  stored.then(() => settle(true), () => settle(false));
  return undefined;
}

/** Refuses with CONNACK and closes; for v5 the reason code, for 3.1.1 the return code. */
function refuse(conn: Connection, outcome: Outcome, detail: string): undefined {
  const ctx = conn.ctx;
  ctx.metrics.connectionsRefused++;
  ctx.warn(conn, `connect-${outcome}`, `connection refused: ${detail}`);
  if (conn.version === 5) {
    conn.send({ cmd: 'connack', sessionPresent: false, reasonCode: V5_REASON[outcome], properties: { reasonString: describe(outcome) } });
  } else {
    conn.send({ cmd: 'connack', sessionPresent: false, returnCode: v3ConnackCode(outcome) });
  }
  conn.end();
  return undefined;
}
