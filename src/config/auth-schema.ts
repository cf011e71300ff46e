/**
 * `auth:` — who may connect and what they may do. Listeners bound to loopback admit anyone
 * (only local programs reach them); a listener bound beyond loopback admits only
 * authenticated clients unless allow_anonymous is true. Paths are relative to the config file.
 */
import { z } from 'zod';
import { duration } from './unit-schema.js';

export const authSchema = z
  .object({
    allow_anonymous: z
      .boolean()
      .default(false)
      .describe('Admit clients without credentials on listeners bound beyond loopback (loopback listeners always admit them).'),
    password_file: z
      .string()
      .min(1)
      .optional()
      .describe('Users and salted scrypt hashes, written by `outpost passwd FILE USER`; checked at CONNECT. Keep it root:outpost 0640 (0600 if outpost owns it): one others may read or change is warned about at start, reload and `outpost check`. Absent: user names are not checked (and not trusted).'),
    acl_file: z
      .string()
      .min(1)
      .optional()
      .describe('Read/write rules per user, client id, MQTT-SN client, serial device and bridge (see config/acl.example). Absent: everything is allowed; present: deny by default. One others may change (or read, when it has client or mqttsn sections, whose ids are credentials) is warned about.'),
    failure_delay: duration({ max: 60_000 })
      .prefault('1s')
      .describe('A refused password is answered (CONNACK 4 / 0x86) after this delay, the same for an unknown user and a wrong password.'),
    max_concurrent_checks: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(4)
      .describe('Password verifications (scrypt) running at once; more wait, taken from each source address in turn, and beyond 50 times this many waiting (a quarter of that from one address) a client is refused as server busy.'),
  })
  .strict();

export type AuthConfig = z.infer<typeof authSchema>;
