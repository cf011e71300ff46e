/**
 * Bridges, live: added ones start, removed ones stop, changed ones are replaced by a bridge
 * with the new settings (it reconnects). Outbox rows belong to the bridge *name*, so a
 * replaced bridge drains what its predecessor left, and a removed one keeps its rows in the
 * outbox (they drain if it comes back). Rule changes apply to messages published from then on.
 *
 * No publish may fall between the two bridges of a replacement: the old bridge's sink leaves
 * the bus in the same tick as a stand-in sink with the new rules arrives, and the stand-in
 * leaves in the same tick as the new bridge's own sink arrives (Bridge.stop() and start()
 * change the sinks before their first await).
 *
 *   t0  old.stop() ─ old sink off ─ stand-in on (new rules → outbox under the same name)
 *   t1  old upstream closed (offline published) ─ stand-in off ─ fresh.start() ─ fresh sink on
 */
import type { Bridge } from '../bridge/bridge.js';
import { bridgeSettings, checkTlsFiles } from '../bridge/settings.js';
import type { BridgeConfig, Config } from '../config/schema.js';
import { sameValue } from '../core/same-value.js';
import type { Bus } from '../core/bus.js';
import type { ReloadStep } from './step.js';

export interface BridgeHost {
  bus: Pick<Bus, 'addDurableSink' | 'publish'>;
  /** The running bridges, changed in place (metrics and tests read the same array). */
  bridges: Bridge[];
  /** A new, unstarted bridge for bridges[index] (opens the store if no bridge needed it yet). */
  createBridge(config: BridgeConfig, index: number): Bridge;
  /** The gateway's start signal (aborted when it stops). */
  signal(): AbortSignal;
}

export function bridgesStep(host: BridgeHost): ReloadStep {
  // What each running bridge was made from; filled from the first config it sees.
  let made: Map<string, BridgeConfig> | undefined;

  const find = (name: string) => host.bridges.find((b) => b.name === name);
  const init = (prev: Config) => (made ??= new Map(prev.bridges.filter((b) => find(b.name) !== undefined).map((b) => [b.name, b])));

  return {
    name: 'bridges',
    covers: ['bridges'],
    check(next: Config, prev: Config) {
      const known = init(prev);
      next.bridges.forEach((b, i) => {
        const old = known.get(b.name);
        if (old !== undefined && sameValue(old, b)) return;
        bridgeSettings(b, i);
        checkTlsFiles(b, i);
      });
    },
    async apply(next: Config, prev: Config) {
      const running = init(prev);
      const changes: string[] = [];
      const wanted = new Set(next.bridges.map((b) => b.name));
      for (const [name] of running) {
        if (wanted.has(name)) continue;
        const bridge = find(name);
        running.delete(name);
        if (bridge === undefined) continue;
        host.bridges.splice(host.bridges.indexOf(bridge), 1);
        await bridge.stop();
        // No retained "down" for a bridge that no longer exists: an empty retained payload
        // removes the retained message [MQTT-3.3.1-10].
        void host.bus.publish({ topic: bridge.localStateTopic, payload: Buffer.alloc(0), qos: 1, retain: true, origin: { kind: 'system', id: 'outpost' } });
        const rows = bridge.backlog().rows;
        changes.push(rows > 0 ? `bridge ${name} removed (${rows} messages stay in the outbox)` : `bridge ${name} removed`);
      }
      for (const [i, b] of next.bridges.entries()) {
        const old = running.get(b.name);
        if (old !== undefined && sameValue(old, b)) continue;
        const fresh = host.createBridge(b, i);
        const current = find(b.name);
        if (current === undefined) {
          running.set(b.name, b);
          host.bridges.push(fresh);
          await fresh.start(host.signal());
          changes.push(`bridge ${b.name} added`);
          continue;
        }
        // The replacement (see the header): no publish finds neither bridge.
        const stopped = current.stop();
        const removeStandIn = host.bus.addDurableSink({ name: `bridge ${b.name} (reloading)`, selects: (m) => fresh.selects(m), accept: (m) => fresh.accept(m) });
        host.bridges[host.bridges.indexOf(current)] = fresh;
        running.set(b.name, b);
        await stopped;
        removeStandIn();
        fresh.continueCountsOf(current);
        await fresh.start(host.signal());
        changes.push(`bridge ${b.name} changed (reconnecting with the new settings)`);
      }
      return { changes };
    },
  };
}
