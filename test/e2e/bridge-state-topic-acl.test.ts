/**
 * A cloud whose ACL lets the bridge publish its data but not its state topic (the retained
 * online/offline the bridge publishes at connect and leaves to its Will). An MQTT 5 cloud
 * answers the "online" publish with PUBACK 0x87 (a PUBACK Reason Code, [MQTT-3.4.2-1]); the
 * data still flows, so nothing else tells the operator why the cloud never shows this gateway
 * online. (A 3.1.1 cloud acknowledges and drops it: nothing can be seen there.)
 *
 *   MQTT.js ──▶ Gateway ──▶ outbox ──▶ bridge ──(mTLS)──▶ Mosquitto (acl_file) ──▶ observer
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { publishAll, waitFor } from '../helpers/bridge-gateway.js';
import { startCloudSite } from '../helpers/cloud-site.js';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

describe('a cloud ACL that denies the bridge its state topic', () => {
  it('MQTT 5: logs once per connection that the cloud refused the state message, naming the topic, the reason code and the key, while the data still drains', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-acl-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const acl = join(dir, 'acl');
    // site-17 (the client certificate's CN) may write its data only; the observer reads all.
    writeFileSync(acl, 'user site-17\ntopic write sites/17/sensors/#\nuser observer\ntopic read #\n');
    const { cloudSide, gw, bridge: b, local } = await startCloudSite(cleanups, { mosquitto: [`acl_file ${acl}`], protocol: 5, qos: 1 });
    await waitFor(() => b.linkState === 'up', 'the bridge to connect');
    await publishAll(local, 'sensors/t', Array.from({ length: 10 }, (_, i) => Buffer.from(`m-${i + 1}`)));

    await cloudSide.until((ms) => ms.filter((x) => x.topic === 'sites/17/sensors/t').length === 10, 'the data at the cloud');
    await waitFor(() => gw.logs().some((l) => l.msg.startsWith('cloud refused our state message')), 'the warning about the state message');
    const lines = gw.logs().filter((l) => l.msg.startsWith('cloud refused our state message'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', bridge: 'cloud', topic: 'sites/17/state', reasonCode: 0x87 });
    expect(lines[0]!.msg).toBe(
      'cloud refused our state message on sites/17/state (PUBACK 0x87, not authorized): the cloud will not show this gateway online; check the broker ACL for bridges[].state_topic',
    );
    expect(cloudSide.messages.filter((x) => x.topic === 'sites/17/state')).toEqual([]);
  });
});
