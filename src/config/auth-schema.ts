/**
 * `auth:` — who may connect. Listeners bound to loopback admit anyone (only local programs
 * reach them); a listener bound beyond loopback admits only authenticated clients unless
 * allow_anonymous is true.
 */
import { z } from 'zod';

export const authSchema = z
  .object({
    allow_anonymous: z
      .boolean()
      .default(false)
      .describe('Admit clients without credentials on listeners bound beyond loopback (loopback listeners always admit them).'),
  })
  .strict();

export type AuthConfig = z.infer<typeof authSchema>;
