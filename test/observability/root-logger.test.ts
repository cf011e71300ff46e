import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createRootLogger, flushLogger } from '../../src/observability/logger.js';

function sink(): { stream: Writable & { write: (s: string) => boolean }; text: () => string } {
  let out = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out += String(chunk);
      cb();
    },
  });
  return { stream: stream as Writable & { write: (s: string) => boolean }, text: () => out };
}

describe('root logger', () => {
  it('writes one JSON line per event with the level as a word and secrets redacted', async () => {
    const s = sink();
    const log = createRootLogger({ level: 'info', format: 'json', destination: s.stream });
    log.info({ password: 'hunter2', port: 1883 }, 'listener ready');
    await flushLogger(log);
    const line = JSON.parse(s.text().trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'info', msg: 'listener ready', port: 1883, password: '[redacted]' });
  });

  it('formats lines for a human with format pretty (pino-pretty, loaded only then)', async () => {
    const s = sink();
    const log = createRootLogger({ level: 'info', format: 'pretty', destination: s.stream, isTty: false });
    log.info({ port: 1883 }, 'listener ready');
    await flushLogger(log);
    expect(s.text()).toMatch(/INFO.*listener ready/);
    expect(s.text()).toContain('port: 1883');
    expect(() => JSON.parse(s.text())).toThrow();
  });
});
