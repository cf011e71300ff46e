/**
 * Pretty logs go to a terminal, and log messages carry what clients chose (client ids, user
 * names): their control characters are shown, never sent to the terminal raw.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createRootLogger, flushLogger } from '../../src/observability/logger.js';

describe('pretty log lines', () => {
  it('show ESC, CR, BEL and C1 characters of a message and its fields as escapes', async () => {
    let out = '';
    const stream = new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk);
        cb();
      },
    });
    const log = createRootLogger({ level: 'info', format: 'pretty', destination: stream as Writable & { write: (s: string) => boolean }, isTty: false });
    log.warn({ clientId: 'x\u009b2J' }, 'connection refused (user "evil\u001b]0;pwned\u0007\r\u001b[2J")');
    await flushLogger(log);
    expect(out).toContain('connection refused (user "evil\\u001b]0;pwned\\u0007\\r\\u001b[2J")');
    expect(out).toContain('\\u009b2J');
    expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  });
});
