/**
 * The MQTT 5 application properties a message carries end to end (§3.3.2.3): what the
 * broker keeps from a client's PUBLISH or Will, and what the bridge keeps from the cloud.
 * Topic Alias and Subscription Identifier are hop-by-hop and are never copied.
 */
import type { MessageProperties } from '../core/message.js';

export interface WireMessageProperties extends MessageProperties {
  messageExpiryInterval?: number;
}

/** The application properties of a packet's property set, or undefined when it has none. */
export function pickMessageProps(p: WireMessageProperties): MessageProperties | undefined {
  let out: MessageProperties | undefined;
  if (p.payloadFormatIndicator !== undefined) (out ??= {}).payloadFormatIndicator = p.payloadFormatIndicator;
  if (p.contentType !== undefined) (out ??= {}).contentType = p.contentType;
  if (p.responseTopic !== undefined) (out ??= {}).responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) (out ??= {}).correlationData = p.correlationData;
  if (p.userProperties !== undefined) (out ??= {}).userProperties = p.userProperties;
  return out;
}
