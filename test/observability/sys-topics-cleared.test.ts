/**
 * A $SYS copy whose sample is gone (a bridge or serial device removed by a reload, a
 * component that is no longer stuck) is cleared, not left retained with its last value.
 */
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/message.js';
import { PromText } from '../../src/observability/prometheus.js';
import { SysPublisher } from '../../src/observability/sys-topics.js';
import { FakeClock } from '../helpers/fake-clock.js';

describe('$SYS copies of samples that are gone', () => {
  it('are cleared with an empty retained message once, and published again if the sample comes back', () => {
    const clock = new FakeClock();
    const sent: Message[] = [];
    let bridges = ['cloud', 'backup'];
    const sys = new SysPublisher(30_000, {
      bus: { publish: (m) => void sent.push(m) },
      clock,
      collect: () => new PromText().family('outpost_outbox_rows', 'gauge', 'h', bridges.map((bridge) => ({ labels: { bridge }, value: 5 }))).families,
    });
    sys.start();
    expect(sent.map((m) => [m.topic, m.payload.toString(), m.retain])).toEqual([
      ['$SYS/outpost/outbox_rows/cloud', '5', true],
      ['$SYS/outpost/outbox_rows/backup', '5', true],
    ]);
    bridges = ['cloud'];
    clock.advance(30_000);
    expect(sent.slice(2).map((m) => [m.topic, m.payload.toString(), m.retain])).toEqual([['$SYS/outpost/outbox_rows/backup', '', true]]);
    clock.advance(30_000);
    expect(sent).toHaveLength(3);
    bridges = ['cloud', 'backup'];
    clock.advance(30_000);
    expect(sent.slice(3).map((m) => [m.topic, m.payload.toString()])).toEqual([['$SYS/outpost/outbox_rows/backup', '5']]);
    sys.stop();
  });
});
