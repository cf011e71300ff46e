/**
 * Turns what went wrong on the way to the cloud broker into one sentence an operator can
 * act on (naming the config key to check), and a stable key so that identical failures
 * repeating every backoff interval are rate-limited in the log.
 */
export interface Failure {
  /** One sentence for the log and the `down` event. */
  sentence: string;
  /** Same key = same failure (rate limiting); the sentence without volatile details. */
  key: string;
}

export type Phase = 'dns+tcp' | 'tls' | 'connack' | 'up';

const PHASE_TEXT: Record<Phase, string> = {
  'dns+tcp': 'while connecting',
  tls: 'during the TLS handshake',
  connack: 'before CONNACK',
  up: 'while connected',
};

function failure(sentence: string, key = sentence): Failure {
  return { sentence, key };
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

/** A socket or TLS error (node error codes) during the given phase; `servername` when bridges[].servername is set. */
export function describeSocketError(err: Error & { code?: string }, host: string, port: number, phase: Phase, servername?: string): Failure {
  const code = err.code ?? '';
  const where = `${host}:${port}`;
  if (UNTRUSTED.has(code)) return failure(`TLS certificate of ${host} is not trusted (${code}): check bridges[].ca`);
  if (code === 'CERT_HAS_EXPIRED') return failure(`TLS certificate of ${host} has expired (CERT_HAS_EXPIRED): renew the broker's certificate, or check this device's clock`);
  if (code === 'CERT_NOT_YET_VALID') return failure(`TLS certificate of ${host} is not yet valid (CERT_NOT_YET_VALID): check this device's clock`);
  // Checked against servername when one is set, not the URL host.
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return failure(`TLS certificate of ${host} is not issued for ${servername ?? host} (ERR_TLS_CERT_ALTNAME_INVALID): check bridges[].url or bridges[].servername`);
  if (/CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|ACCESS_DENIED/.test(code)) {
    return failure(`broker ${where} refused our client certificate (${code}): check bridges[].cert and bridges[].key`);
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('ERR_OSSL_')) {
    return failure(`TLS with ${where} failed (${code}): ${err.message}`);
  }
  if (code === 'ECONNREFUSED') return failure(`connection to ${where} refused (ECONNREFUSED): is the broker running and the port right?`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') return failure(`cannot resolve ${host} (${code}): check bridges[].url and the DNS of this device`);
  if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ENETDOWN' || code === 'EHOSTDOWN') {
    return failure(`cannot reach ${where} (${code}): check the uplink`);
  }
  // A TLS hello sent to a plain MQTT port, or plain CONNECT to a TLS port, is answered by a reset.
  if (code === 'ECONNRESET' || code === 'EPIPE') return failure(`connection to ${where} was reset ${PHASE_TEXT[phase]} (${code})${schemeHint(phase)}`);
  return failure(`connection to ${where} failed ${PHASE_TEXT[phase]} (${code || err.message})`, `${where}:${phase}:${code || err.message}`);
}

function schemeHint(phase: Phase): string {
  return phase === 'tls' || phase === 'connack' ? ': is it a TLS port (mqtts://) and does it accept our client certificate?' : '';
}

/**
 * The peer closed the connection without an error event. While connected, the usual cause of a
 * close that repeats is another client with our client id: the broker closes the older
 * connection (3.1.1 [MQTT-3.1.4-2]; MQTT 5 [MQTT-3.1.4-3], with a DISCONNECT 0x8E that Mosquitto
 * 2.0.11 does not send), and the two take the id from each other for as long as both run (a
 * cloned gateway). The key stays that of the plain close: one rate limit for both.
 */
export function describeClose(host: string, port: number, phase: Phase, clientId?: string): Failure {
  const takeover = phase === 'up' && clientId !== undefined ? `: if this repeats, ${takeoverHint(clientId)}` : '';
  return failure(`broker ${host}:${port} closed the connection ${PHASE_TEXT[phase]}${schemeHint(phase)}${takeover}`);
}

/**
 * A close before CONNACK after our TLS handshake succeeded: the port is a TLS port and our
 * certificate passed the handshake, so the broker refused the CONNECT itself without a CONNACK.
 * Same key as the plain close before CONNACK (one rate limit; connect-shape.ts tells the causes apart).
 */
export function describeCloseAfterTls(host: string, port: number): Failure {
  return failure(
    `broker ${host}:${port} closed the connection before CONNACK, after the TLS handshake: it refused our CONNECT without saying why (too large for its maximum packet size, a Will it does not take, or the identity in our client certificate); the next attempt tells whether it is the size`,
    describeClose(host, port, 'connack').key,
  );
}

function takeoverHint(clientId: string): string {
  return `another client may be using our client id ${JSON.stringify(clientId)} (a broker keeps only the newest connection of an id): check bridges[].client_id`;
}

export function describeTimeout(host: string, port: number, phase: Phase, ms: number): Failure {
  return failure(`no CONNACK from ${host}:${port} within ${ms} ms (stuck ${PHASE_TEXT[phase]}): check the uplink and bridges[].connect_timeout`);
}

export function describeKeepalive(host: string, port: number, silentMs: number, keepaliveS: number): Failure {
  return failure(`nothing from ${host}:${port} for ${silentMs} ms (keepalive ${keepaliveS} s): the link is dead, reconnecting`, `${host}:${port}:keepalive`);
}

const V5_REASONS: Record<number, string> = {
  0x04: 'disconnect with will message',
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8b: 'server shutting down',
  0x8c: 'bad authentication method',
  0x8d: 'keep alive timeout',
  0x8e: 'session taken over',
  0x8f: 'topic filter invalid',
  0x90: 'topic name invalid',
  0x93: 'receive maximum exceeded',
  0x94: 'topic alias invalid',
  0x95: 'packet too large',
  0x96: 'message rate too high',
  0x97: 'quota exceeded',
  0x98: 'administrative action',
  0x99: 'payload format invalid',
  0x9a: 'retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'use another server',
  0x9d: 'server moved',
  0x9e: 'shared subscriptions not supported',
  0x9f: 'connection rate exceeded',
  0xa0: 'maximum connect time',
  0xa1: 'subscription identifiers not supported',
  0xa2: 'wildcard subscriptions not supported',
};

const V4_RETURN_CODES: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'client identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

const CONNACK_HINTS: Record<string, string> = {
  'bad user name or password': 'check bridges[].username and bridges[].password',
  // Mosquitto answers a wrong password with "not authorized" (0x87 / 5), not 0x86 / 4.
  'not authorized': 'check bridges[].username and bridges[].password (or the client certificate) and the broker ACL',
  'client identifier not valid': 'check bridges[].client_id',
  'client identifier rejected': 'check bridges[].client_id',
  'unsupported protocol version': 'try bridges[].protocol: 4',
  'unacceptable protocol version': 'try bridges[].protocol: 4',
};

function hex(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')}`;
}

export function reasonText(code: number): string {
  return V5_REASONS[code] ?? `reason ${hex(code)}`;
}

/** A CONNACK that refused us: 3.1.1 return codes as decimals, MQTT 5 reason codes as hex. */
export function describeConnack(code: number, version: 4 | 5): Failure {
  // 0x01 is no MQTT 5 reason code: it is how a broker that speaks only 3.1.1 (Azure IoT Hub, for one)
  // answers an MQTT 5 CONNECT, with its own CONNACK return code 1 (3.1.1 [MQTT-3.1.2-2]).
  if (version === 5 && code === 1) {
    return failure('connection refused: the broker speaks only MQTT 3.1.1 (it answered CONNACK return code 1, unacceptable protocol version): set bridges[].protocol: 4');
  }
  const text = version === 5 ? reasonText(code) : (V4_RETURN_CODES[code] ?? `return code ${code}`);
  const hint = CONNACK_HINTS[text];
  return failure(`connection refused: ${text} (CONNACK ${version === 5 ? hex(code) : code})${hint === undefined ? '' : `: ${hint}`}`);
}

/** A DISCONNECT sent by the remote (MQTT 5); 0x8E (session taken over) names our client id. */
export function describeDisconnect(code: number, reasonString: string | undefined, clientId?: string): Failure {
  const detail = reasonString === undefined ? '' : `: ${reasonString}`;
  const hint = code === 0x8e && clientId !== undefined ? `: ${takeoverHint(clientId)}` : '';
  return failure(`broker disconnected us: ${reasonText(code)} (DISCONNECT ${hex(code)})${detail}${hint}`, `disconnect:${code}`);
}

/** CONNACK 0x9B for our QoS 1 Will: the broker takes QoS 0 only [MQTT-3.2.2-12]. */
export function describeWillQos0(host: string, port: number, willQos: number): Failure {
  return failure(`broker ${host}:${port} takes QoS 0 only (CONNACK 0x9b for our QoS ${willQos} Will); connecting again with the state topic at QoS 0`, 'will-qos0');
}

/** A 3.1.1 broker closed the connection before CONNACK `closes` times in a row: taken as refusing our retained Will. */
export function describeNoRetainCloses(host: string, port: number, closes: number): Failure {
  return failure(
    `broker ${host}:${port} closed the connection before CONNACK ${closes} times in a row, as a 3.1.1 broker without retained messages does for our retained Will: connecting again with the state topic and retained messages sent without the retain flag`,
    'no-retain-311',
  );
}

/**
 * The broker closed the connection on the fixed header of our CONNECT, before its body: it
 * refuses the Remaining Length, i.e. its maximum packet size is below our CONNECT's. A 3.1.1
 * or MQTT 5 broker cannot say so with a CONNACK then (Mosquitto does not know the protocol
 * version yet), and the close looks like a TLS or client certificate problem.
 */
export function describeConnectTooLarge(host: string, port: number, bytes: number): Failure {
  return failure(
    `broker ${host}:${port} closed the connection on the header of our ${bytes}-byte CONNECT, before reading it: its maximum packet size (Mosquitto max_packet_size) is smaller than our CONNECT, so raise it on the cloud broker or shorten bridges[].client_id, username, password and state_topic`,
    'connect-too-large',
  );
}

/** A 3.1.1 broker closed before CONNACK on our QoS 1 Will with and without the retain flag: taken as one that takes QoS 0 only. */
export function describeQos0Closes(host: string, port: number, closes: number, willQos: number): Failure {
  return failure(
    `broker ${host}:${port} closed the connection before CONNACK ${closes} times in a row, with our QoS ${willQos} Will as well as without its retain flag, as a 3.1.1 broker that takes QoS 0 only (Mosquitto max_qos 0) does: connecting again with the state topic at QoS 0, and messages of rules with qos 1 or 2 go at QoS 0, each deleted from the outbox once the broker answered a PINGREQ sent after it`,
    'qos0-311',
  );
}

/** The cloud refused our state message (an MQTT 5 PUBACK reason code >= 0x80). */
export function describeStateRefused(topic: string, code: number): string {
  return `cloud refused our state message on ${topic} (PUBACK ${hex(code)}, ${reasonText(code)}): the cloud will not show this gateway online; check the broker ACL for bridges[].state_topic`;
}
