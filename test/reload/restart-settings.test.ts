/**
 * The restart-only table: which settings a reload reports instead of applying, that the JSON
 * Schema says so, and that every key of the schema is either restart-only or live.
 */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { buildJsonSchema } from '../../src/config/json-schema.js';
import { keepRunningValues, restartChanges, RESTART_NOTE, RESTART_SETTINGS } from '../../src/config/restart-settings.js';
import { Gateway } from '../../src/gateway.js';
import { logLevelStep } from '../../src/reload/log-level-step.js';

const cfg = (yaml: string) => parseConfigText(yaml, 'outpost.yaml');

describe('restart-only settings', () => {
  it('names each changed restart-only setting, and a whole section once when it appears', () => {
    const running = cfg('listeners: [{ type: mqtt, port: 1883 }]\nstore: { dir: /var/lib/a }\n');
    const next = cfg('listeners: [{ type: mqtt, port: 1884 }]\nstore: { dir: /var/lib/b }\nmqttsn: { port: 1886 }\nlog: { level: debug }\n');
    expect(restartChanges(running, next)).toEqual(['listeners', 'store', 'mqttsn']);
    expect(restartChanges(running, running)).toEqual([]);
  });

  it('names an MQTT-SN setting by its key when the section stays', () => {
    const running = cfg('mqttsn: { port: 1885, predefined_topics: { 1: a } }\n');
    const next = cfg('mqttsn: { port: 1886, predefined_topics: { 1: b } }\n');
    expect(restartChanges(running, next)).toEqual(['mqttsn.port']);
  });

  it('keeps the running value of a restart-only setting and takes the live ones from the new file', () => {
    const running = cfg('listeners: [{ type: mqtt, port: 1883 }]\nmqttsn: { port: 1885 }\n');
    const next = cfg('listeners: [{ type: mqtt, port: 1884 }]\nmqttsn: { port: 1886, predefined_topics: { 7: x/y } }\nlog: { level: warn }\n');
    const applied = keepRunningValues(running, next, restartChanges(running, next));
    expect(applied.listeners[0]!.port).toBe(1883);
    expect(applied.mqttsn!.port).toBe(1885);
    expect(applied.mqttsn!.predefined_topics).toEqual({ 7: 'x/y' });
    expect(applied.log.level).toBe('warn');
    expect(Object.isFrozen(applied.mqttsn)).toBe(true);
    // A section that appeared is left out until a restart.
    const none = cfg('');
    expect(keepRunningValues(none, next, restartChanges(none, next)).mqttsn).toBeUndefined();
  });

  it('is stated in the JSON Schema description of each restart-only setting, and only there', () => {
    const schema = buildJsonSchema() as { properties: Record<string, { description?: string; properties?: Record<string, { description?: string }> }> };
    expect(schema.properties['listeners']!.description).toContain(RESTART_NOTE);
    expect(schema.properties['mqttsn']!.properties!['port']!.description).toContain(RESTART_NOTE);
    expect(schema.properties['bridges']!.description).not.toContain(RESTART_NOTE);
    expect(schema.properties['mqttsn']!.properties!['predefined_topics']!.description).not.toContain(RESTART_NOTE);
    expect(JSON.stringify(schema).split(RESTART_NOTE).length - 1).toBe(RESTART_SETTINGS.length);
  });

  it('together with the reload steps covers every key of the schema exactly once', () => {
    const config = cfg('mqttsn: { port: 0 }\n');
    const gateway = new Gateway(config, { log: pino({ level: 'silent' }) });
    const live = [logLevelStep(pino({ level: 'silent' })), ...gateway.reloadSteps('outpost.yaml')].flatMap((s) => s.covers);
    const owners = (path: string) => [...RESTART_SETTINGS, ...live].filter((e) => path === e || path.startsWith(`${e}.`));
    type Node = { properties?: Record<string, Node> };
    const leaves: string[] = [];
    const walk = (node: Node, prefix: string[]) => {
      const props = node.properties;
      if (props === undefined || prefix.length >= 3) return void leaves.push(prefix.join('.'));
      for (const [k, v] of Object.entries(props)) walk(v, [...prefix, k]);
    };
    walk(buildJsonSchema() as Node, []);
    const wrong = leaves.filter((p) => owners(p).length !== 1).map((p) => `${p}: ${owners(p).join(', ') || 'neither restart-only nor live'}`);
    expect(wrong).toEqual([]);
  });
});
