import { describe, expect, it } from 'vitest';
import { prng } from '../helpers/prng.js';
import { SubscriptionTree, type Subscriber, type SubscriptionEntry } from '../../src/broker/subscription-tree.js';
import { topicMatches } from '../../src/core/topic.js';
import type { QoS } from '../../src/core/message.js';

class FakeSubscriber implements Subscriber {
  routeMark = 0;
  constructor(
    readonly key: string,
    public isOnline = true,
  ) {}
  get originId(): string {
    return this.key;
  }
  deliver(): void {}
}

function entry(sub: Subscriber, filter: string, qos: QoS = 0, group?: string): SubscriptionEntry {
  return {
    subscriber: sub,
    filter: group === undefined ? filter : `$share/${group}/${filter}`,
    qos,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: 0,
    subscriptionId: undefined,
    group,
  };
}

/** "key filter" strings of a match, sorted, for order-independent comparison. */
function matched(tree: SubscriptionTree, topic: string): string[] {
  return tree.match(topic, []).map((e) => `${e.subscriber.key} ${e.filter}`).sort();
}

/** Nodes below the root: a pruned tree has none. */
function nodeCount(tree: SubscriptionTree): number {
  type Node = { children: Map<string, Node> | undefined };
  const count = (n: Node): number => {
    let c = 0;
    for (const child of n.children?.values() ?? []) c += 1 + count(child);
    return c;
  };
  return count(tree['root'] as unknown as Node);
}

describe('SubscriptionTree add/remove', () => {
  it('reports a new subscription as new and a repeated one as a replacement [MQTT-3.8.4-3]', () => {
    const t = new SubscriptionTree();
    const s = new FakeSubscriber('s');
    expect(t.add('a/b', entry(s, 'a/b', 0))).toBe(true);
    expect(t.add('a/b', entry(s, 'a/b', 2))).toBe(false);
    expect(t.size).toBe(1);
    const hits = t.match('a/b', []);
    expect(hits).toHaveLength(1);
    expect(hits[0]!.qos).toBe(2);
  });

  it('keeps one entry per subscriber per filter and separate entries per subscriber', () => {
    const t = new SubscriptionTree();
    const a = new FakeSubscriber('a');
    const b = new FakeSubscriber('b');
    t.add('x/+', entry(a, 'x/+'));
    t.add('x/+', entry(b, 'x/+'));
    t.add('x/#', entry(a, 'x/#'));
    expect(t.size).toBe(3);
    expect(matched(t, 'x/y')).toEqual(['a x/#', 'a x/+', 'b x/+']);
  });

  it('returns every overlapping subscription of one subscriber (the router merges them)', () => {
    const t = new SubscriptionTree();
    const s = new FakeSubscriber('s');
    for (const f of ['a/b', 'a/+', 'a/#', '#', '+/b', '+/+']) t.add(f, entry(s, f));
    expect(matched(t, 'a/b')).toEqual(['s #', 's +/+', 's +/b', 's a/#', 's a/+', 's a/b']);
    expect(matched(t, 'a')).toEqual(['s #', 's a/#']);
  });

  it('removes only the given subscriber and reports whether it existed', () => {
    const t = new SubscriptionTree();
    const a = new FakeSubscriber('a');
    const b = new FakeSubscriber('b');
    t.add('x', entry(a, 'x'));
    t.add('x', entry(b, 'x'));
    expect(t.remove('x', 'a', undefined)).toBe(true);
    expect(t.remove('x', 'a', undefined)).toBe(false);
    expect(t.remove('nope/x', 'b', undefined)).toBe(false);
    expect(t.remove('x', 'b', 'g')).toBe(false); // not a member of a group
    expect(matched(t, 'x')).toEqual(['b x']);
    expect(t.size).toBe(1);
  });

  it('prunes every node when all subscriptions are removed, so churn leaks nothing', () => {
    const t = new SubscriptionTree();
    const subs = [new FakeSubscriber('a'), new FakeSubscriber('b')];
    const filters = ['a/b/c', 'a/b', 'a/+/c', 'a/#', '#', '/', '//x', '$SYS/#', 'a/b/c/d/e/f'];
    for (const s of subs) for (const f of filters) t.add(f, entry(s, f));
    t.add('a/b', entry(new FakeSubscriber('m1'), 'a/b', 1, 'g'));
    t.add('a/b', entry(new FakeSubscriber('m2'), 'a/b', 1, 'g'));
    expect(t.size).toBe(filters.length * 2 + 2);
    expect(nodeCount(t)).toBeGreaterThan(10);
    // Remove in an order different from insertion: parents before children and back.
    for (const f of [...filters].reverse()) expect(t.remove(f, 'a', undefined)).toBe(true);
    for (const f of filters) expect(t.remove(f, 'b', undefined)).toBe(true);
    expect(t.remove('a/b', 'm2', 'g')).toBe(true);
    expect(nodeCount(t)).toBeGreaterThan(0); // the group's last member keeps a/b alive
    expect(t.remove('a/b', 'm1', 'g')).toBe(true);
    expect(t.size).toBe(0);
    expect(nodeCount(t)).toBe(0);
    expect(t.match('a/b', [])).toEqual([]);
  });

  it('keeps a parent node that still has subscriptions when a child is pruned', () => {
    const t = new SubscriptionTree();
    const s = new FakeSubscriber('s');
    t.add('a', entry(s, 'a'));
    t.add('a/b/c', entry(s, 'a/b/c'));
    t.remove('a/b/c', 's', undefined);
    expect(nodeCount(t)).toBe(1);
    expect(matched(t, 'a')).toEqual(['s a']);
  });

  it('does not prune a node when removing a subscription that was never there', () => {
    const t = new SubscriptionTree();
    const s = new FakeSubscriber('s');
    t.add('a/b', entry(s, 'a/b'));
    expect(t.remove('a', 's', undefined)).toBe(false);
    expect(t.size).toBe(1);
    expect(matched(t, 'a/b')).toEqual(['s a/b']);
  });
});

describe('SubscriptionTree matching', () => {
  it('does not match $ topics with leading wildcards but does with explicit $ filters [MQTT-4.7.2-1]', () => {
    const t = new SubscriptionTree();
    const s = new FakeSubscriber('s');
    for (const f of ['#', '+/x', '+/#', '$SYS/#', '$SYS/+', '$SYS/x']) t.add(f, entry(s, f));
    expect(matched(t, '$SYS/x')).toEqual(['s $SYS/#', 's $SYS/+', 's $SYS/x']);
    expect(matched(t, 'SYS/x')).toEqual(['s #', 's +/#', 's +/x']);
  });

  it('matches a/# against a, and + against empty levels', () => {
    const t = new SubscriptionTree();
    const s = new FakeSubscriber('s');
    for (const f of ['a/#', 'a/+', '+/+', '/+', '+']) t.add(f, entry(s, f));
    expect(matched(t, 'a')).toEqual(['s +', 's a/#']);
    expect(matched(t, 'a/')).toEqual(['s +/+', 's a/#', 's a/+']);
    expect(matched(t, '/')).toEqual(['s +/+', 's /+']);
  });
});

describe('SubscriptionTree shared groups', () => {
  function group(t: SubscriptionTree, name: string, members: FakeSubscriber[], filter = 'j/+'): void {
    for (const m of members) t.add(filter, entry(m, filter, 1, name));
  }
  const pick = (t: SubscriptionTree, topic = 'j/1') => t.match(topic, []).map((e) => e.subscriber.key);

  it('delivers each message to one member, round robin', () => {
    const t = new SubscriptionTree();
    group(t, 'g', [new FakeSubscriber('a'), new FakeSubscriber('b'), new FakeSubscriber('c')]);
    const picks = Array.from({ length: 6 }, () => pick(t));
    expect(picks).toEqual([['a'], ['b'], ['c'], ['a'], ['b'], ['c']]);
  });

  it('skips offline members while any member is online', () => {
    const t = new SubscriptionTree();
    const a = new FakeSubscriber('a');
    const b = new FakeSubscriber('b', false);
    const c = new FakeSubscriber('c');
    group(t, 'g', [a, b, c]);
    expect(Array.from({ length: 4 }, () => pick(t)[0])).toEqual(['a', 'c', 'a', 'c']);
    b.isOnline = true;
    a.isOnline = false;
    expect(Array.from({ length: 4 }, () => pick(t)[0]).sort()).toEqual(['b', 'b', 'c', 'c']);
  });

  it('still delivers (to be queued) when every member is offline, rotating', () => {
    const t = new SubscriptionTree();
    group(t, 'g', [new FakeSubscriber('a', false), new FakeSubscriber('b', false)]);
    expect(Array.from({ length: 4 }, () => pick(t)[0])).toEqual(['a', 'b', 'a', 'b']);
  });

  it('serves each group once and ordinary subscribers alongside', () => {
    const t = new SubscriptionTree();
    group(t, 'g1', [new FakeSubscriber('a'), new FakeSubscriber('b')]);
    group(t, 'g2', [new FakeSubscriber('c')], 'j/#');
    t.add('j/1', entry(new FakeSubscriber('plain'), 'j/1'));
    expect(pick(t).sort()).toEqual(['a', 'c', 'plain']);
    expect(pick(t).sort()).toEqual(['b', 'c', 'plain']);
  });

  it('keeps rotating after a member leaves, and the group goes when its last member leaves', () => {
    const t = new SubscriptionTree();
    group(t, 'g', [new FakeSubscriber('a'), new FakeSubscriber('b'), new FakeSubscriber('c')]);
    expect(pick(t)).toEqual(['a']);
    expect(t.remove('j/+', 'c', 'g')).toBe(true);
    const seen = Array.from({ length: 4 }, () => pick(t)[0]);
    expect(seen.sort()).toEqual(['a', 'a', 'b', 'b']);
    t.remove('j/+', 'a', 'g');
    t.remove('j/+', 'b', 'g');
    expect(pick(t)).toEqual([]);
    expect(t.size).toBe(0);
    expect(nodeCount(t)).toBe(0);
  });

  it('replaces a member that subscribes again instead of adding it twice', () => {
    const t = new SubscriptionTree();
    const a = new FakeSubscriber('a');
    expect(t.add('j/+', entry(a, 'j/+', 0, 'g'))).toBe(true);
    expect(t.add('j/+', entry(a, 'j/+', 2, 'g'))).toBe(false);
    expect(t.size).toBe(1);
    expect(t.match('j/1', [])[0]!.qos).toBe(2);
  });
});

describe('SubscriptionTree against brute force', () => {
  const words = ['a', 'b', 'c', '', '$x', '$SYS'];

  function randomTopic(r: () => number): string {
    const n = 1 + Math.floor(r() * 4);
    return Array.from({ length: n }, () => words[Math.floor(r() * words.length)]!).join('/');
  }

  function randomFilter(r: () => number): string {
    const n = 1 + Math.floor(r() * 4);
    const levels: string[] = [];
    for (let i = 0; i < n; i++) {
      const x = r();
      if (i === n - 1 && x < 0.2) levels.push('#');
      else if (x < 0.45) levels.push('+');
      else levels.push(words[Math.floor(r() * words.length)]!);
    }
    return levels.join('/');
  }

  it.each([1, 2, 3, 42, 1337])('agrees with topicMatches for random filters, topics and removals (seed %i)', (seed) => {
    const r = prng(seed);
    const t = new SubscriptionTree();
    const subs = Array.from({ length: 8 }, (_, i) => new FakeSubscriber(`s${i}`));
    /** key → set of filters, the model. */
    const model = new Map<string, Set<string>>(subs.map((s) => [s.key, new Set()]));
    for (let round = 0; round < 400; round++) {
      const s = subs[Math.floor(r() * subs.length)]!;
      const filter = randomFilter(r);
      const has = model.get(s.key)!.has(filter);
      if (r() < 0.3) {
        expect(t.remove(filter, s.key, undefined)).toBe(has);
        model.get(s.key)!.delete(filter);
      } else {
        expect(t.add(filter, entry(s, filter))).toBe(!has);
        model.get(s.key)!.add(filter);
      }
      for (let q = 0; q < 5; q++) {
        const topic = randomTopic(r);
        const expected: string[] = [];
        for (const [key, filters] of model) for (const f of filters) if (topicMatches(f, topic)) expected.push(`${key} ${f}`);
        expect(matched(t, topic), `topic "${topic}"`).toEqual(expected.sort());
      }
    }
    let total = 0;
    for (const f of model.values()) total += f.size;
    expect(t.size).toBe(total);
    // Remove everything: the tree must be empty again.
    for (const [key, filters] of model) for (const f of filters) expect(t.remove(f, key, undefined)).toBe(true);
    expect(t.size).toBe(0);
    expect(nodeCount(t)).toBe(0);
  });
});
