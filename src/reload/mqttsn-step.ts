/**
 * MQTT-SN predefined topic ids, live (global and per client). The rest of `mqttsn:` needs a
 * restart (config/restart-settings.ts); so does turning the gateway on or off.
 */
import { sameValue } from '../core/same-value.js';
import type { MqttsnGateway } from '../mqttsn/gateway.js';
import type { ReloadStep } from './step.js';

export function mqttsnStep(gateway: Pick<MqttsnGateway, 'setPredefinedTopics'> | undefined): ReloadStep {
  return {
    name: 'mqtt-sn',
    covers: ['mqttsn.predefined_topics', 'mqttsn.clients'],
    async apply(next, prev) {
      const n = next.mqttsn;
      const p = prev.mqttsn;
      if (gateway === undefined || n === undefined) return { changes: [] };
      if (p !== undefined && sameValue(n.predefined_topics, p.predefined_topics) && sameValue(n.clients, p.clients)) return { changes: [] };
      gateway.setPredefinedTopics(n.predefined_topics, n.clients);
      return { changes: ['mqtt-sn predefined topics replaced'] };
    },
  };
}
