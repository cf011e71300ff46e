import { describe, expect, it } from 'vitest';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { BrokerMetrics } from '../../src/broker/metrics.js';
import { renderMetrics } from '../../src/observability/gateway-metrics.js';

describe('/metrics for authentication, ACLs and limits', () => {
  it('reports refused passwords, ACL denials by kind, limited connections by reason and denied bridge messages', () => {
    const m = new BrokerMetrics();
    m.authFailures = 3;
    m.denial('publish');
    m.denial('publish');
    m.denial('subscribe');
    m.limited.add('connect-rate', 5);
    const text = renderMetrics(
      {
        broker: { metrics: m },
        bridges: [{ name: 'cloud', linkState: 'up', counters: { reconnects: 0, inbound: 4, denied: 1 }, backlog: () => ({ rows: 0, bytes: 0, oldestCreatedAt: undefined, drops: {}, inflight: 0 }) }],
      },
      { now: () => 0, eventLoopLagMs: () => 0, rssBytes: () => 0, listenersUp: () => true },
    );
    const families = parsePrometheusTextFormat(text) as { name: string; metrics: { value: string; labels?: Record<string, string> }[] }[];
    const get = (name: string) => families.find((f) => f.name === name)!.metrics.map((x) => [x.labels ?? {}, Number(x.value)]);
    expect(get('outpost_auth_failures_total')).toEqual([[{}, 3]]);
    expect(get('outpost_acl_denied_total')).toEqual([[{ kind: 'publish' }, 2], [{ kind: 'subscribe' }, 1]]);
    expect(get('outpost_connections_limited_total')).toEqual([[{ reason: 'connect-rate' }, 5]]);
    expect(get('outpost_bridge_inbound_denied_total')).toEqual([[{ bridge: 'cloud' }, 1]]);
  });
});
