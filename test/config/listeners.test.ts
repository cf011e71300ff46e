import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { configProblems } from '../helpers/config-problems.js';

const problems = (text: string): string[] => configProblems(text, 'config.yaml');

describe('listener kinds in config', () => {
  it('fills each kind with its own default port, and ws/wss with the /mqtt path', () => {
    const config = parseConfigText(
      [
        'listeners:',
        '  - type: mqtt',
        '  - { type: mqtts, cert: s.crt, key: s.key }',
        '  - type: ws',
        '  - { type: wss, cert: s.crt, key: s.key, path: /ws }',
      ].join('\n'),
      'config.yaml',
    );
    expect(config.listeners).toEqual([
      { type: 'mqtt', host: '127.0.0.1', port: 1883 },
      { type: 'mqtts', host: '127.0.0.1', port: 8883, cert: 's.crt', key: 's.key', min_version: 'TLSv1.2', require_certificate: false, use_identity_as_username: false },
      { type: 'ws', host: '127.0.0.1', port: 8080, path: '/mqtt', allowed_origins: [] },
      { type: 'wss', host: '127.0.0.1', port: 8081, path: '/ws', allowed_origins: [], cert: 's.crt', key: 's.key', min_version: 'TLSv1.2', require_certificate: false, use_identity_as_username: false },
    ]);
  });

  it('names the kinds when the type is unknown', () => {
    expect(problems('listeners:\n  - type: tcp\n')).toEqual([
      'config.yaml:2:11 listeners[0].type: unknown listener type; use one of: mqtt, mqtts, ws, wss, got "tcp"',
    ]);
  });

  it('asks for cert and key on a TLS listener', () => {
    expect(problems('listeners:\n  - type: mqtts\n')).toEqual([
      'config.yaml:2:5 listeners[0].cert: missing required key "cert"; add cert',
      'config.yaml:2:5 listeners[0].key: missing required key "key"; add key',
    ]);
  });

  it('refuses mutual TLS without a CA, and the certificate identity without mutual TLS', () => {
    const text = 'listeners:\n  - { type: wss, cert: a, key: b, require_certificate: true }\n  - { type: mqtts, cert: a, key: b, use_identity_as_username: true }\n';
    const lines = problems(text);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('listeners[0].ca: require_certificate needs ca');
    expect(lines[1]).toMatch(/listeners\[1\]\.use_identity_as_username: needs require_certificate: true$/);
  });

  it('refuses a WebSocket path that does not start with a slash and keys of another kind', () => {
    const lines = problems('listeners:\n  - { type: ws, path: mqtt }\n  - { type: mqtt, path: /mqtt }\n');
    expect(lines[0]).toContain('listeners[0].path: must start with /');
    expect(lines[1]).toContain('listeners[1].path: unknown key "path"');
  });

  it('refuses an allowed_origins entry that is not an origin, naming the entry, and takes origins and "*"', () => {
    const lines = problems('listeners:\n  - type: ws\n    allowed_origins: ["https://dash.example:8443/app", "dash.example", "*"]\n');
    expect(lines).toEqual([
      'config.yaml:3:23 listeners[0].allowed_origins[0]: must be a web origin like "https://dash.example:8443" (scheme, host, optional port; no path) or "*", got "https://dash.example:8443/app"',
      'config.yaml:3:56 listeners[0].allowed_origins[1]: must be a web origin like "https://dash.example:8443" (scheme, host, optional port; no path) or "*", got "dash.example"',
    ]);
    const ok = parseConfigText('listeners:\n  - { type: wss, cert: a, key: b, allowed_origins: ["https://dash.example:8443", "*"] }\n', 'config.yaml');
    expect(ok.listeners[0]).toMatchObject({ allowed_origins: ['https://dash.example:8443', '*'] });
  });
});
