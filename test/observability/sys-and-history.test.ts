/** $SYS topic naming and publishing rounds; the status history stays bounded. */
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/message.js';
import { PromText } from '../../src/observability/prometheus.js';
import { StatusHistory } from '../../src/observability/status.js';
import { SysPublisher, sysTopics } from '../../src/observability/sys-topics.js';
import { FakeClock } from '../helpers/fake-clock.js';

describe('$SYS copies of the metrics', () => {
  it('names one topic per sample below $SYS/outpost, label values as levels without separators or wildcards', () => {
    const p = new PromText()
      .one('outpost_clients_connected', 'gauge', 'h', 3)
      .family('outpost_outbox_dropped_total', 'counter', 'h', [{ labels: { bridge: 'cloud', reason: 'full-oldest' }, value: 2 }])
      .family('outpost_weird', 'gauge', 'h', [{ labels: { x: 'a/b+c#' }, value: 1 }, { labels: { x: '' }, value: 0 }]);
    expect([...sysTopics(p.families)]).toEqual([
      ['$SYS/outpost/clients_connected', '3'],
      ['$SYS/outpost/outbox_dropped_total/cloud/full-oldest', '2'],
      ['$SYS/outpost/weird/a_b_c_', '1'],
      ['$SYS/outpost/weird/_', '0'],
    ]);
  });

  it('publishes every value retained at start, then only the ones that changed, every interval until stopped', () => {
    const clock = new FakeClock();
    const sent: Message[] = [];
    let clients = 1;
    const sys = new SysPublisher(30_000, {
      bus: { publish: (m) => void sent.push(m) },
      clock,
      collect: () => new PromText().one('outpost_clients_connected', 'gauge', 'h', clients).one('outpost_up', 'gauge', 'h', 1).families,
    });
    sys.start();
    expect(sent.map((m) => [m.topic, m.payload.toString(), m.retain, m.origin.kind])).toEqual([
      ['$SYS/outpost/clients_connected', '1', true, 'system'],
      ['$SYS/outpost/up', '1', true, 'system'],
    ]);
    clients = 2;
    clock.advance(30_000);
    expect(sent.slice(2).map((m) => [m.topic, m.payload.toString()])).toEqual([['$SYS/outpost/clients_connected', '2']]);
    sys.stop();
    clients = 3;
    clock.advance(60_000);
    expect(sent).toHaveLength(3);
    expect(clock.pending).toBe(0);
  });
});

describe('status history', () => {
  it('keeps at most status_history / status_interval samples of each bridge backlog, oldest dropped first', () => {
    const clock = new FakeClock();
    let rows = 0;
    const bridge = { name: 'cloud', linkState: 'down' as const, counters: { reconnects: 0, inbound: 0 }, backlog: () => ({ rows, bytes: 0, oldestCreatedAt: undefined, drops: {}, inflight: 0 }) };
    const h = new StatusHistory(10_000, 60_000, clock, () => [bridge]);
    expect(h.capacity).toBe(6);
    h.start();
    for (let i = 1; i <= 20; i++) {
      rows = i;
      clock.advance(10_000);
    }
    expect(h.list().map((s) => s.rows['cloud'])).toEqual([15, 16, 17, 18, 19, 20]);
    h.stop();
    expect(clock.pending).toBe(0);
  });
});
