/**
 * Config errors go to the terminal and, under systemd, to the journal: a password is not
 * repeated in them, and a long value (a private key given as the config file) is cut short.
 */
import { describe, expect, it } from 'vitest';
import { configProblems } from '../helpers/config-problems.js';

const problems = configProblems;

describe('values in config errors', () => {
  it('of a bridge password of the wrong type are not repeated', () => {
    const lines = problems('bridges:\n  - name: c\n    url: mqtt://a:1\n    password: 31415926\n    rules: [{ pattern: "#" }]\n');
    expect(lines).toEqual(['c.yaml:4:15 bridges[0].password: expected a string, got a number']);
    expect(lines.join('\n')).not.toContain('31415926');
  });

  it('longer than 60 characters are cut short with their length, so a key file given as the config is not printed', () => {
    const body = 'MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQC8O+jR2F+6M7AgTB1DzdAM5pZMoZedSVJoOSX';
    const pem = `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
    const lines = problems(pem, 'server.key');
    expect(lines).toHaveLength(1);
    // PEM text is named by its header alone: the first characters of an EC key's body are its secret.
    expect(lines[0]).toMatch(/^server\.key:1:1 top level: expected a map of keys, got "-----BEGIN PRIVATE KEY-----"… \(\d+ characters\)$/);
    expect(lines[0]).not.toContain(body.slice(0, 8));
  });
});
