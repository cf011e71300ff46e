/**
 * `$SYS/...` carries what the gateway says about itself (serial device and bridge states,
 * counters), retained. MQTT clients may neither publish there nor make it their Will topic,
 * whatever the ACL says (broker/handlers/publish.ts, as mosquitto does; MQTT 5 §4.7.2), and
 * neither may a sensor: one REGISTER and PUBLISH could otherwise show a dead device as
 * online. A refused PUBLISH gets 0x03 "rejected: not supported" (§5.3.10), as an ACL denial
 * does; a Will topic CONNACK/WILLTOPICRESP 0x03. (Feature folders do not import each other,
 * so the broker's one-line rule is repeated here.)
 */
export function isGatewayTopic(topic: string): boolean {
  return topic === '$SYS' || topic.startsWith('$SYS/');
}
