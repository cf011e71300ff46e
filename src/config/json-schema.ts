/**
 * The JSON Schema of what a user may write (durations and sizes as number-or-string),
 * generated from the zod schema so editors and the gateway can never disagree.
 * `npm run schema` writes it to config/outpost.schema.json; a test checks it is current.
 * Settings a live reload cannot change (restart-settings.ts) say so in their description.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';
import { RESTART_NOTE, RESTART_SETTINGS } from './restart-settings.js';

export const SCHEMA_FILE = 'config/outpost.schema.json';

type JsonNode = { description?: string; properties?: Record<string, JsonNode> };

export function buildJsonSchema(): Record<string, unknown> {
  const schema = {
    ...z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' }),
    title: 'outpost gateway configuration',
  };
  for (const entry of RESTART_SETTINGS) {
    let node = schema as JsonNode;
    for (const key of entry.split('.')) {
      const child = node.properties?.[key];
      if (child === undefined) throw new Error(`restart setting ${entry} is not in the config schema`);
      node = child;
    }
    node.description = node.description === undefined ? RESTART_NOTE : `${node.description} ${RESTART_NOTE}`;
  }
  return schema;
}

/** The exact bytes of config/outpost.schema.json. */
export function renderJsonSchema(): string {
  return `${JSON.stringify(buildJsonSchema(), null, 2)}\n`;
}
