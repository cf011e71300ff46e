/**
 * The JSON Schema of what a user may write (durations and sizes as number-or-string),
 * generated from the zod schema so editors and the gateway can never disagree.
 * `npm run schema` writes it to config/outpost.schema.json; a test checks it is current.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

export const SCHEMA_FILE = 'config/outpost.schema.json';

export function buildJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' }),
    title: 'outpost gateway configuration',
  };
}

/** The exact bytes of config/outpost.schema.json. */
export function renderJsonSchema(): string {
  return `${JSON.stringify(buildJsonSchema(), null, 2)}\n`;
}
