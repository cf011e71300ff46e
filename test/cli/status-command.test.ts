/** `outpost status` through the CLI: --url is its option only, and a stopped gateway is exit 1. */
import { describe, expect, it } from 'vitest';
import { parseCommand, runCli, type CliDeps } from '../../src/cli.js';
import { freePort } from '../helpers/gateway-fixture.js';

function deps() {
  const io = { out: '', err: '' };
  const d: CliDeps = {
    stdout: (t) => (io.out += t),
    stderr: (t) => (io.err += t),
    process: { onSignal: () => () => undefined, onCrash: () => () => undefined, exitNow: () => undefined },
  };
  return { io, d };
}

describe('outpost status', () => {
  it('parses with and without --url, and refuses --url on other commands', () => {
    expect(parseCommand(['status'])).toEqual({ name: 'status', url: undefined });
    expect(parseCommand(['status', '--url', 'http://127.0.0.1:9200'])).toEqual({ name: 'status', url: 'http://127.0.0.1:9200' });
    expect(() => parseCommand(['run', '--url', 'http://x'])).toThrow('option --url does not apply to "run"');
  });

  it('exits 1 with one sentence when no gateway answers', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const { io, d } = deps();
    expect(await runCli(['status', '--url', url], d)).toBe(1);
    expect(io.out).toBe('');
    expect(io.err.split('\n').filter(Boolean)).toHaveLength(1);
    expect(io.err).toContain(`outpost status: no outpost answers at ${url} (ECONNREFUSED); is the service running`);
  });

  it('exits 2 for a --url that is not a URL', async () => {
    const { io, d } = deps();
    expect(await runCli(['status', '--url', 'not a url'], d)).toBe(2);
    expect(io.err).toBe('outpost status: "not a url" is not a URL; give the metrics listener as --url http://HOST:PORT\n');
  });
});
