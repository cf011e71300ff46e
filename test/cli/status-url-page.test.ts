/** `outpost status --url` given the URL of one of the listener's pages asks the listener itself. */
import { describe, expect, it } from 'vitest';
import { statusCommand } from '../../src/observability/status-command.js';

describe('outpost status --url', () => {
  it('with /metrics, /healthz or /status.json at the end asks that listener for /status.json', async () => {
    for (const page of ['metrics', 'healthz', 'status.json', 'metrics/']) {
      const asked: string[] = [];
      const code = await statusCommand(`http://127.0.0.1:9100/${page}`, {
        stdout: () => undefined,
        stderr: () => undefined,
        fetch: (async (u: URL) => {
          asked.push(String(u));
          return new Response('{}', { status: 404 });
        }) as unknown as typeof fetch,
      });
      expect(code).toBe(1);
      expect(asked).toEqual(['http://127.0.0.1:9100/status.json']);
    }
  });
});
