/**
 * Handlers report what happened as an Outcome; this file is the one place that turns
 * an outcome into MQTT 5 reason codes (§2.4) and MQTT 3.1.1 return codes (§3.2.2.3).
 */
export type Outcome =
  | 'success'
  | 'no-matching-subscribers'
  | 'no-subscription-existed'
  | 'disconnect-with-will'
  | 'unspecified-error'
  | 'malformed-packet'
  | 'protocol-error'
  | 'implementation-specific-error'
  | 'unsupported-protocol-version'
  | 'client-identifier-not-valid'
  | 'bad-username-or-password'
  | 'not-authorized'
  | 'bad-authentication-method'
  | 'server-unavailable'
  | 'server-busy'
  | 'server-shutting-down'
  | 'keep-alive-timeout'
  | 'session-taken-over'
  | 'topic-filter-invalid'
  | 'topic-name-invalid'
  | 'packet-identifier-in-use'
  | 'packet-identifier-not-found'
  | 'receive-maximum-exceeded'
  | 'topic-alias-invalid'
  | 'packet-too-large'
  | 'message-rate-too-high'
  | 'quota-exceeded'
  | 'administrative-action'
  | 'payload-format-invalid'
  | 'retain-not-supported'
  | 'qos-not-supported'
  | 'shared-subscriptions-not-supported'
  | 'connection-rate-exceeded'
  | 'subscription-identifiers-not-supported'
  | 'wildcard-subscriptions-not-supported';

export const V5_REASON: Readonly<Record<Outcome, number>> = {
  success: 0x00,
  'no-matching-subscribers': 0x10,
  'no-subscription-existed': 0x11,
  'disconnect-with-will': 0x04,
  'unspecified-error': 0x80,
  'malformed-packet': 0x81,
  'protocol-error': 0x82,
  'implementation-specific-error': 0x83,
  'unsupported-protocol-version': 0x84,
  'client-identifier-not-valid': 0x85,
  'bad-username-or-password': 0x86,
  'not-authorized': 0x87,
  'bad-authentication-method': 0x8c,
  'server-unavailable': 0x88,
  'server-busy': 0x89,
  'server-shutting-down': 0x8b,
  'keep-alive-timeout': 0x8d,
  'session-taken-over': 0x8e,
  'topic-filter-invalid': 0x8f,
  'topic-name-invalid': 0x90,
  'packet-identifier-in-use': 0x91,
  'packet-identifier-not-found': 0x92,
  'receive-maximum-exceeded': 0x93,
  'topic-alias-invalid': 0x94,
  'packet-too-large': 0x95,
  'message-rate-too-high': 0x96,
  'quota-exceeded': 0x97,
  'administrative-action': 0x98,
  'payload-format-invalid': 0x99,
  'retain-not-supported': 0x9a,
  'qos-not-supported': 0x9b,
  'shared-subscriptions-not-supported': 0x9e,
  'connection-rate-exceeded': 0x9f,
  'subscription-identifiers-not-supported': 0xa1,
  'wildcard-subscriptions-not-supported': 0xa2,
};

/** MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2-4/-5]. */
export function v3ConnackCode(outcome: Outcome): number {
  switch (outcome) {
    case 'success':
      return 0;
    case 'unsupported-protocol-version':
      return 1;
    case 'client-identifier-not-valid':
      return 2;
    case 'bad-username-or-password':
      return 4;
    case 'not-authorized':
      return 5;
    default:
      return 3; // server unavailable
  }
}

/** v3.1.1 SUBACK: granted QoS or 0x80 failure [MQTT-3.9.3-2]. */
export function v3SubackCode(outcome: Outcome, grantedQos: number): number {
  return outcome === 'success' ? grantedQos : 0x80;
}

/** v5 SUBACK: granted QoS (0x00..0x02) or an error reason. */
export function v5SubackCode(outcome: Outcome, grantedQos: number): number {
  return outcome === 'success' ? grantedQos : V5_REASON[outcome];
}

/** Short human text for logs and v5 Reason String. */
export function describe(outcome: Outcome): string {
  return outcome.replace(/-/g, ' ');
}
