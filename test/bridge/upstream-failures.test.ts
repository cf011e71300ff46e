import { describe, expect, it } from 'vitest';
import { describeClose, describeCloseAfterTls, describeConnack, describeConnectTooLarge, describeDisconnect, describeSocketError, describeTimeout } from '../../src/bridge/upstream-failures.js';

const err = (code: string, message = code): Error & { code: string } => Object.assign(new Error(message), { code });

describe('upstream failure sentences', () => {
  const socketRows: [string, string, 'dns+tcp' | 'tls' | 'connack' | 'up', string][] = [
    ['an untrusted chain', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls', 'TLS certificate of broker.example.com is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE): check bridges[].ca'],
    ['a self-signed broker', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'tls', 'TLS certificate of broker.example.com is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT): check bridges[].ca'],
    ['an expired certificate', 'CERT_HAS_EXPIRED', 'tls', "TLS certificate of broker.example.com has expired (CERT_HAS_EXPIRED): renew the broker's certificate, or check this device's clock"],
    ['a certificate for another name', 'ERR_TLS_CERT_ALTNAME_INVALID', 'tls', 'TLS certificate of broker.example.com is not issued for broker.example.com (ERR_TLS_CERT_ALTNAME_INVALID): check bridges[].url or bridges[].servername'],
    ['a missing client certificate', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'connack', 'broker broker.example.com:8883 refused our client certificate (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED): check bridges[].cert and bridges[].key'],
    ['a refused port', 'ECONNREFUSED', 'dns+tcp', 'connection to broker.example.com:8883 refused (ECONNREFUSED): is the broker running and the port right?'],
    ['an unknown host', 'ENOTFOUND', 'dns+tcp', 'cannot resolve broker.example.com (ENOTFOUND): check bridges[].url and the DNS of this device'],
    ['no route', 'EHOSTUNREACH', 'dns+tcp', 'cannot reach broker.example.com:8883 (EHOSTUNREACH): check the uplink'],
    ['a reset during the handshake (a plain port)', 'ECONNRESET', 'tls', 'connection to broker.example.com:8883 was reset during the TLS handshake (ECONNRESET): is it a TLS port (mqtts://) and does it accept our client certificate?'],
    ['a reset before CONNACK (a plain CONNECT to a TLS port)', 'ECONNRESET', 'connack', 'connection to broker.example.com:8883 was reset before CONNACK (ECONNRESET): is it a TLS port (mqtts://) and does it accept our client certificate?'],
    ['a reset while connected', 'ECONNRESET', 'up', 'connection to broker.example.com:8883 was reset while connected (ECONNRESET)'],
  ];
  it.each(socketRows)('names what to check for %s', (_name, code, phase, sentence) => {
    expect(describeSocketError(err(code), 'broker.example.com', 8883, phase).sentence).toBe(sentence);
  });

  it.each([
    [0x86, 5, 'connection refused: bad user name or password (CONNACK 0x86): check bridges[].username and bridges[].password'],
    [0x87, 5, 'connection refused: not authorized (CONNACK 0x87): check bridges[].username and bridges[].password (or the client certificate) and the broker ACL'],
    [0x85, 5, 'connection refused: client identifier not valid (CONNACK 0x85): check bridges[].client_id'],
    [0x89, 5, 'connection refused: server busy (CONNACK 0x89)'],
    [4, 4, 'connection refused: bad user name or password (CONNACK 4): check bridges[].username and bridges[].password'],
    [1, 4, 'connection refused: unacceptable protocol version (CONNACK 1): try bridges[].protocol: 4'],
    [1, 5, 'connection refused: the broker speaks only MQTT 3.1.1 (it answered CONNACK return code 1, unacceptable protocol version): set bridges[].protocol: 4'],
    [9, 4, 'connection refused: return code 9 (CONNACK 9)'],
  ] as const)('explains CONNACK %i (MQTT %i)', (code, version, sentence) => {
    expect(describeConnack(code, version).sentence).toBe(sentence);
  });

  it('names the servername, not the URL host, as the name the certificate lacks when bridges[].servername is set', () => {
    expect(describeSocketError(err('ERR_TLS_CERT_ALTNAME_INVALID'), '10.0.0.7', 8883, 'tls', 'cloud.example.com').sentence).toBe(
      'TLS certificate of 10.0.0.7 is not issued for cloud.example.com (ERR_TLS_CERT_ALTNAME_INVALID): check bridges[].url or bridges[].servername',
    );
  });

  it('explains a DISCONNECT from the broker, with its reason string', () => {
    expect(describeDisconnect(0x8b, 'maintenance').sentence).toBe('broker disconnected us: server shutting down (DISCONNECT 0x8b): maintenance');
  });

  it('names our client id as the thing to check when the broker says another client took the session over (DISCONNECT 0x8e) [MQTT-3.1.4-3]', () => {
    expect(describeDisconnect(0x8e, undefined, 'site-17').sentence).toBe(
      'broker disconnected us: session taken over (DISCONNECT 0x8e): another client may be using our client id "site-17" (a broker keeps only the newest connection of an id): check bridges[].client_id',
    );
    expect(describeDisconnect(0x8b, undefined, 'site-17').sentence).toBe('broker disconnected us: server shutting down (DISCONNECT 0x8b)');
  });

  it('says where a connection attempt got stuck or was closed', () => {
    expect(describeTimeout('h', 1, 'tls', 300).sentence).toBe('no CONNACK from h:1 within 300 ms (stuck during the TLS handshake): check the uplink and bridges[].connect_timeout');
    expect(describeClose('h', 1, 'connack').sentence).toMatch(/^broker h:1 closed the connection before CONNACK: is it a TLS port/);
  });

  it('names the maximum packet size on both sides for a CONNECT refused on its header, and no TLS problem for a close after the handshake', () => {
    expect(describeConnectTooLarge('h', 1, 312)).toEqual({
      sentence: 'broker h:1 closed the connection on the header of our 312-byte CONNECT, before reading it: its maximum packet size (Mosquitto max_packet_size) is smaller than our CONNECT, so raise it on the cloud broker or shorten bridges[].client_id, username, password and state_topic',
      key: 'connect-too-large',
    });
    const afterTls = describeCloseAfterTls('h', 1);
    expect(afterTls.sentence).not.toMatch(/TLS port/);
    expect(afterTls.key).toBe(describeClose('h', 1, 'connack').key); // one rate limit with the plain close
  });

  it('gives identical failures the same rate-limit key and unknown errors a specific one', () => {
    expect(describeSocketError(err('ECONNREFUSED'), 'h', 1, 'dns+tcp').key).toBe(describeSocketError(err('ECONNREFUSED'), 'h', 1, 'dns+tcp').key);
    expect(describeSocketError(err('EWEIRD'), 'h', 1, 'up').key).not.toBe(describeSocketError(err('EOTHER'), 'h', 1, 'up').key);
  });
});
