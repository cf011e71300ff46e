/**
 * `outpost status` prints client ids, which any client chooses: control characters in them
 * reach the operator's terminal as visible \xNN, never as escape sequences.
 */
import { describe, expect, it } from 'vitest';
import { statusCommand } from '../../src/observability/status-command.js';

const doc = {
  version: '0.1.0',
  now: 0,
  uptimeSeconds: 5,
  healthy: true,
  problems: [],
  clients: { connected: 1, list: [{ clientId: 'evil\u001b]0;pwned\u0007\u001b[2J\u202e', address: '127.0.0.1:5000', transport: 'tcp', protocol: 5 }] },
  devices: [],
  sensors: { byState: {}, list: [] },
  bridges: [],
  history: { intervalMs: 10_000, samples: [] },
};

describe('outpost status with a client id holding control characters', () => {
  it('shows them escaped and writes no control character but newlines', async () => {
    let out = '';
    const code = await statusCommand('http://127.0.0.1:9100', {
      stdout: (t) => void (out += t),
      stderr: () => undefined,
      fetch: (async () => new Response(JSON.stringify(doc), { headers: { 'content-type': 'application/json' } })) as typeof fetch,
    });
    expect(code).toBe(0);
    expect(out).toContain('evil\\x1b]0;pwned\\x07\\x1b[2J\\u202e  127.0.0.1:5000');
    expect(out.replace(/\n/g, '')).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
  });
});
