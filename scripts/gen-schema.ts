// Writes config/outpost.schema.json from the zod schema (run: npm run schema).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderJsonSchema, SCHEMA_FILE } from '../src/config/json-schema.js';
import { DEVICES_SCHEMA_FILE, renderDevicesJsonSchema } from '../src/config/devices-json-schema.js';

const target = fileURLToPath(new URL(`../${SCHEMA_FILE}`, import.meta.url));
writeFileSync(target, renderJsonSchema());
console.log(`wrote ${SCHEMA_FILE}`);
writeFileSync(fileURLToPath(new URL(`../${DEVICES_SCHEMA_FILE}`, import.meta.url)), renderDevicesJsonSchema());
console.log(`wrote ${DEVICES_SCHEMA_FILE}`);
