/**
 * TLS `cert`, `key` and `ca` name PEM files. Pasted PEM text instead (`key: |` and the key,
 * as some tools take it) was taken for a file name: `outpost check` printed "cannot read
 * /etc/outpost/-----BEGIN EC PRIVATE KEY----- MHc…" with the whole private key, and a reload
 * wrote it to the journal. The value is refused here, without being repeated.
 */
import type { z } from 'zod';

/** A superRefine for a PEM file path: refuses PEM text itself. */
export function notPemText(value: string, ctx: z.RefinementCtx): void {
  if (!value.includes('-----BEGIN')) return;
  ctx.addIssue({
    code: 'custom',
    params: { plain: true },
    message: 'holds PEM text, not the path of a PEM file; put it in a file (a key readable by the outpost user only) and give that path',
  });
}
