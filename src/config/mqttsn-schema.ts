/**
 * The `mqttsn:` section: the MQTT-SN v1.2 gateway over UDP. Absent means disabled (it
 * opens a UDP port); present, every key has a default. Durations in ms, sizes in bytes.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { validateTopicName } from '../core/topic.js';
import { duration, size } from './unit-schema.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const topicName = z.string().superRefine((s, ctx) => {
  const c = validateTopicName(s);
  if (!c.ok) ctx.addIssue({ code: 'custom', message: c.reason });
});

/** Predefined ids 1..65534 (0x0000 and 0xFFFF are reserved, §5.3.11) → topic names. */
const predefinedSchema = z
  .record(z.string().regex(/^\d+$/, { error: () => 'a predefined topic id is a number from 1 to 65534' }), topicName)
  .superRefine((rec, ctx) => {
    for (const key of Object.keys(rec)) {
      const id = Number(key);
      if (id < 1 || id > 0xfffe) {
        ctx.addIssue({ code: 'custom', path: [key], params: { plain: true }, message: `a predefined topic id is a number from 1 to 65534, got ${key}` });
      }
    }
  });

const cidr = z.string().superRefine((s, ctx) => {
  const [addr, bits, extra] = s.split('/');
  const family = isIP(addr ?? '');
  const max = family === 6 ? 128 : 32;
  if (family === 0 || extra !== undefined || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max))) {
    ctx.addIssue({ code: 'custom', message: 'expected an address or a network such as 10.0.0.0/8 or fd00::/8' });
  }
});

/** RFC 1918, loopback, link-local and unique-local networks: where battery sensors live. */
export const DEFAULT_QOS_MINUS_ONE_SOURCES = ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '::1/128', 'fc00::/7', 'fe80::/10'];

export const mqttsnSchema = z
  .object({
    hosts: z
      .array(z.string().refine((h) => isIP(h) !== 0, { error: () => 'expected an IPv4 or IPv6 address such as 0.0.0.0 or ::' }))
      .min(1)
      .default(['0.0.0.0', '::'])
      .describe('UDP addresses to bind: 0.0.0.0 for every IPv4 interface, :: for every IPv6 one.'),
    port: int(0, 65535).default(1885).describe('UDP port; 0 picks a free port (tests use this).'),
    gateway_id: int(0, 255).default(1).describe('GwId in ADVERTISE and GWINFO (§5.3.6).'),
    max_datagram_size: size({ min: 16, max: 65_507 }).prefault('4KiB').describe('Largest datagram accepted or sent; bigger ones are dropped and counted.'),
    max_clients: z.number().int().min(1).default(50_000).describe('Most client sessions kept; a CONNECT beyond gets CONNACK 0x01 (congestion).'),
    retry_interval: duration({ min: 10, max: 3_600_000 }).prefault('10s').describe('T_retry (§6.13): wait for an acknowledgement before retransmitting.'),
    max_retries: int(0, 100).default(3).describe('N_retry (§6.13): retransmissions before the client is considered lost.'),
    max_topics_per_client: int(1, 65_534).default(256).describe('Registered topic ids per client; beyond, REGISTER/SUBSCRIBE get 0x01 (congestion).'),
    max_buffered_messages: z.number().int().min(1).default(100).describe('Messages kept per client while it sleeps or cannot keep up; more are dropped and counted.'),
    session_expiry: duration({ max: 4_294_967_295_000 }).prefault('1d').describe('How long a disconnected or lost client with CleanSession=false keeps its session.'),
    predefined_topics: predefinedSchema.default({}).describe('Predefined topic ids (§6.7) for every client: id → topic name.'),
    clients: z
      .record(z.string().min(1), z.object({ predefined_topics: predefinedSchema.default({}) }).strict())
      .default({})
      .describe('Per client id: predefined topic ids that add to or override the global ones.'),
    qos_minus_one_sources: z
      .array(cidr)
      .default(DEFAULT_QOS_MINUS_ONE_SOURCES)
      .describe('Networks from which PUBLISH QoS -1 (no connection, §6.8) is accepted; [] turns QoS -1 off.'),
    advertise: z
      .object({
        interval: duration({ max: 65_535_000 }).prefault('15m').describe('ADVERTISE period (§6.1); 0 turns it off.'),
        address: z.string().refine((h) => isIP(h) !== 0, { error: () => 'expected an IPv4 or IPv6 address' }).default('255.255.255.255').describe('Broadcast or multicast address for ADVERTISE and broadcast GWINFO.'),
        port: int(1, 65535).default(1885).describe('UDP port clients listen on for broadcasts.'),
      })
      .strict()
      .prefault({}),
    rate_limit: z
      .object({
        datagrams_per_second: z.number().positive().default(200).describe('Sustained datagrams per second accepted from one source address and port (from one node, behind a forwarder).'),
        burst: z.number().int().min(1).default(400).describe('Datagrams a source may send at once above the sustained rate.'),
      })
      .strict()
      .prefault({})
      .describe('Flood protection per source; excess datagrams are dropped and counted.'),
  })
  .strict();

export type MqttsnConfig = z.output<typeof mqttsnSchema>;
