/** Builds the MQTT-SN gateway on UDP from its config section (used by the composition root). */
import type { Logger } from 'pino';
import type { Bus } from '../core/bus.js';
import type { Authorizer } from '../core/authorizer.js';
import type { Clock } from '../core/clock.js';
import type { MqttsnConfig } from '../config/mqttsn-schema.js';
import { MqttsnGateway } from './gateway.js';
import { UdpTransport } from './udp-transport.js';

export function createMqttsnGateway(config: MqttsnConfig, deps: { bus: Bus; log: Logger; clock?: Clock; authorizer?: Authorizer; maxTopicLevels?: number }): MqttsnGateway {
  let gateway: MqttsnGateway | undefined = undefined;
  const transport = new UdpTransport(
    {
      hosts: config.hosts,
      port: config.port,
      maxDatagramSize: config.max_datagram_size,
      broadcastAddress: config.advertise.address,
      broadcastPort: config.advertise.port,
      onOversized: (from, size) => gateway?.oversized(from, size),
    },
    deps.log,
  );
  gateway = new MqttsnGateway(config, { ...deps, transport });
  return gateway;
}
