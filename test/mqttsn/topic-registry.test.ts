import { describe, expect, it } from 'vitest';
import { PredefinedTopics, TopicRegistry } from '../../src/mqttsn/topic-registry.js';

describe('per-client topic registry (§6.5)', () => {
  it('gives a name the same id every time and maps it back', () => {
    const r = new TopicRegistry(10);
    const id = r.assign('a/b', true)!;
    expect(r.assign('a/b', true)).toBe(id);
    expect(r.nameOf(id)).toBe('a/b');
    expect(r.idOf('a/b')).toBe(id);
  });

  it('refuses a new name once the table holds its limit, but still answers known names', () => {
    const r = new TopicRegistry(3);
    const ids = ['a', 'b', 'c'].map((n) => r.assign(n, true));
    expect(r.assign('d', true)).toBeUndefined();
    expect(r.assign('b', true)).toBe(ids[1]);
  });

  it('never hands out 0x0000 or 0xFFFF, even after wrapping around the id space', () => {
    const r = new TopicRegistry(2);
    const seen = new Set<number>();
    for (let i = 0; i < 70_000; i++) {
      const id = r.assign(`t${i}`, false)!;
      seen.add(id);
      r.forget(id);
    }
    expect(seen.has(0)).toBe(false);
    expect(seen.has(0xffff)).toBe(false);
    expect(seen.size).toBe(0xfffe);
  });

  it('skips ids still in use after wrapping', () => {
    const r = new TopicRegistry(5);
    const keep = r.assign('keep', true)!;
    for (let i = 0; i < 0xfffe; i++) r.forget(r.assign(`x${i}`, false)!);
    const next = r.assign('new', false)!;
    expect(next).not.toBe(keep);
    expect(r.nameOf(keep)).toBe('keep');
  });

  it('tracks which ids the client confirmed', () => {
    const r = new TopicRegistry(5);
    const id = r.assign('gw/assigned', false)!;
    expect(r.isKnown(id)).toBe(false);
    r.confirm(id);
    expect(r.isKnown(id)).toBe(true);
    r.forget(id);
    expect(r.isKnown(id)).toBe(false);
    expect(r.nameOf(id)).toBeUndefined();
  });

  it('holds the gateway\'s ids to half the table and gives the least recently used one up, never one in use', () => {
    const r = new TopicRegistry(4);
    const g1 = r.assign('g/1', false)!;
    const g2 = r.assign('g/2', false)!;
    r.touch(g1);
    const g3 = r.assign('g/3', false)!; // over the gateway's share: g/2, least recently used, goes
    expect([r.idOf('g/1'), r.idOf('g/2'), r.idOf('g/3')]).toEqual([g1, undefined, g3]);
    expect(r.gatewaySize).toBe(2);
    r.assign('own/1', true);
    r.assign('own/2', true);
    // Full: a client REGISTER takes the place of a gateway id, but not of one in use.
    expect(r.assign('own/3', true, (id) => id === g1)).toBeDefined();
    expect([r.idOf('g/1'), r.idOf('g/3')]).toEqual([g1, undefined]);
    expect(r.assign('own/4', true, (id) => id === g1)).toBeUndefined();
    // Given-up numbers are not handed out again.
    expect([g2, g3]).not.toContain(r.idOf('own/3'));
  });

  it('keeps which ids the gateway registered across a restore', () => {
    const r = new TopicRegistry(4);
    r.assign('g/1', false);
    r.assign('own/1', true);
    const back = new TopicRegistry(4);
    back.restore(JSON.parse(JSON.stringify(r.entries())));
    expect(back.entries()).toEqual(r.entries());
    expect(back.gatewaySize).toBe(1);
  });
});

describe('predefined topic ids (§6.7)', () => {
  const p = new PredefinedTopics(
    new Map([
      [1, 'sensors/door'],
      [2, 'sensors/window'],
    ]),
    new Map([['boiler', new Map([[2, 'boiler/temp']])]]),
  );

  it('resolves global ids for every client', () => {
    expect(p.nameOf('anyone', 1)).toBe('sensors/door');
    expect(p.nameOf(undefined, 2)).toBe('sensors/window');
    expect(p.nameOf('anyone', 3)).toBeUndefined();
  });

  it('lets a client table redefine a global id', () => {
    expect(p.nameOf('boiler', 2)).toBe('boiler/temp');
    expect(p.nameOf('boiler', 1)).toBe('sensors/door');
    expect(p.idOf('boiler', 'boiler/temp')).toBe(2);
    expect(p.idOf('boiler', 'sensors/window')).toBeUndefined();
    expect(p.idOf('other', 'sensors/window')).toBe(2);
  });
});
