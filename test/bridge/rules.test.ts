import { describe, expect, it } from 'vitest';
import { compileRules, inboundRule, outboundRule, toLocal, toRemote } from '../../src/bridge/rules.js';
import { withIdentity, ID_PROPERTY, SEQ_PROPERTY, SOURCE_PROPERTY } from '../../src/bridge/identity.js';
import type { OutboxEntry } from '../../src/store/outbox.js';

const rules = compileRules('cloud', [
  { pattern: 'sensors/#', direction: 'out', qos: 1, local_prefix: '', remote_prefix: 'sites/17/' },
  { pattern: 'commands/+', direction: 'in', qos: 1, local_prefix: 'cloud/', remote_prefix: 'sites/17/' },
  { pattern: 'shared/#', direction: 'both', qos: 0, local_prefix: 'l/', remote_prefix: 'r/' },
]);

describe('bridge rules', () => {
  it.each([
    ['sensors/boiler/temp', 'sites/17/sensors/boiler/temp'],
    ['sensors', 'sites/17/sensors'],
    ['l/shared/x', 'r/shared/x'],
  ])('maps local %s to remote %s', (local, remote) => {
    const rule = outboundRule(rules, local)!;
    expect(toRemote(rule, local)).toBe(remote);
  });

  it.each([
    ['sites/17/commands/reboot', 'cloud/commands/reboot'],
    ['r/shared/y', 'l/shared/y'],
  ])('maps remote %s to local %s', (remote, local) => {
    const rule = inboundRule(rules, remote)!;
    expect(toLocal(rule, remote)).toBe(local);
  });

  it('takes nothing out that only an inbound rule names, and nothing in that only an outbound rule names', () => {
    expect(outboundRule(rules, 'cloud/commands/reboot')).toBeUndefined();
    expect(outboundRule(rules, 'commands/reboot')).toBeUndefined();
    expect(inboundRule(rules, 'sites/17/sensors/x')).toBeUndefined();
  });

  it('takes a topic across only when it begins with the prefix, and never maps one to an empty topic', () => {
    const dev = compileRules('cloud', [
      { pattern: '#', direction: 'both', qos: 1, local_prefix: 'dev/', remote_prefix: '' },
      { pattern: '#', direction: 'both', qos: 1, local_prefix: 'plant/', remote_prefix: 'p/' },
    ]);
    // "dev/#" matches "dev" too, but "dev" is not "dev/" + anything: it used to go out as "".
    expect(outboundRule(dev, 'dev')).toBeUndefined();
    expect(outboundRule(dev, 'dev/')).toBeUndefined();
    expect(toRemote(outboundRule(dev, 'dev/a')!, 'dev/a')).toBe('a');
    // "plant" used to go out as "p/"; "plant/" is "plant/" + "" and maps to "p/".
    expect(outboundRule(dev, 'plant')).toBeUndefined();
    expect(toRemote(outboundRule(dev, 'plant/')!, 'plant/')).toBe('p/');
    const plant = dev.slice(1);
    expect(inboundRule(plant, 'p')).toBeUndefined();
    expect(toLocal(inboundRule(plant, 'p/x')!, 'p/x')).toBe('plant/x');
  });

  it('refuses a prefix holding a wildcard, which cannot be cut off or put on as text', () => {
    expect(() => compileRules('cloud', [{ pattern: 'x/#', direction: 'out', qos: 1, local_prefix: '', remote_prefix: 'a/+/' }])).toThrow(
      /bridges\.cloud\.rules\[0\]: prefix "a\/\+\/" holds a wildcard/,
    );
  });

  it('refuses a rule whose prefix makes the filter invalid, naming the bridge and rule', () => {
    expect(() => compileRules('cloud', [{ pattern: '#', direction: 'out', qos: 1, local_prefix: 'x', remote_prefix: '' }])).toThrow(
      /bridges\.cloud\.rules\[0\]: "x#" is not a valid topic filter/,
    );
  });
});

describe('message identity', () => {
  const entry: OutboxEntry = {
    seq: 42,
    topic: 't',
    payload: Buffer.from('21.5'),
    qos: 1,
    retain: false,
    properties: { userProperties: { unit: 'C' } },
    createdAt: 1_700_000_000_000,
    expiresAt: undefined,
    originKind: 'mqtt',
    originId: 'boiler',
    sourceSeq: 7,
    msgId: 'abc-42',
  };

  it('adds id, source and sequence as user properties and keeps the publisher\'s own', () => {
    const out = withIdentity('properties', entry);
    expect(out.payload).toBe(entry.payload);
    expect(out.properties?.userProperties).toEqual({ unit: 'C', [ID_PROPERTY]: 'abc-42', [SOURCE_PROPERTY]: 'mqtt:boiler', [SEQ_PROPERTY]: '7' });
  });

  it('adds the same three user properties to a message that has no properties of its own', () => {
    const out = withIdentity('properties', { ...entry, properties: undefined });
    expect(out.properties).toEqual({ userProperties: { [ID_PROPERTY]: 'abc-42', [SOURCE_PROPERTY]: 'mqtt:boiler', [SEQ_PROPERTY]: '7' } });
  });

  it('leaves a retained message with no payload unwrapped in envelope mode, so it still clears the retained message at the cloud', () => {
    const clear = withIdentity('envelope', { ...entry, retain: true, payload: Buffer.alloc(0) });
    expect(clear.payload.length).toBe(0);
    // Not retained, an empty payload is a message like any other.
    expect(JSON.parse(String(withIdentity('envelope', { ...entry, retain: false, payload: Buffer.alloc(0) }).payload))).toMatchObject({ payload: '' });
  });

  it('wraps the payload in a JSON envelope, base64 when it is not UTF-8', () => {
    expect(JSON.parse(String(withIdentity('envelope', entry).payload))).toEqual({ id: 'abc-42', src: 'mqtt:boiler', seq: 7, ts: 1_700_000_000_000, payload: '21.5' });
    const binary = withIdentity('envelope', { ...entry, payload: Buffer.from([0xff, 0x00]) });
    expect(JSON.parse(String(binary.payload)).payload_b64).toBe('/wA=');
  });

  it('leaves the message alone with identity none', () => {
    expect(withIdentity('none', entry)).toEqual({ payload: entry.payload, properties: entry.properties });
  });
});
