/**
 * The JSON Schema of a device map file (`devices:` list, included by serial.include), from the
 * same zod schema the loader uses, so editors complete each driver's options.
 * `npm run schema` writes it to config/devices.schema.json; a test checks it is current.
 */
import { z } from 'zod';
import { deviceSchema } from './serial-schema.js';

export const DEVICES_SCHEMA_FILE = 'config/devices.schema.json';

export function renderDevicesJsonSchema(): string {
  const file = z.object({ devices: z.array(deviceSchema).describe('Serial devices.') }).strict();
  const schema = { ...z.toJSONSchema(file, { io: 'input', target: 'draft-2020-12' }), title: 'outpost device map' };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
