/**
 * A bridge url the bridge could not use, or would use only in part, is a config error at
 * its line: `outpost check` said ok, and start-up then failed with exit 1 (a port that is
 * no port: systemd restarted it for ever) or dropped credentials, a query or a fragment.
 */
import { describe, expect, it } from 'vitest';
import { isOutpostError } from '../../src/core/errors.js';
import { parseConfigText } from '../../src/config/load.js';

function problemsOf(url: string): string[] {
  try {
    parseConfigText(`bridges:\n  - name: c\n    url: "${url}"\n    rules: [{ pattern: "s/#" }]\n`, 'c.yaml');
  } catch (err) {
    if (isOutpostError(err, 'CONFIG_INVALID')) return err.message.split('\n');
    throw err;
  }
  return [];
}

describe('bridges[].url', () => {
  it('with a port that is no port (too large, not a number, 0) is reported at its line', () => {
    for (const url of ['mqtts://cloud.example:99999', 'mqtts://cloud.example:abc', 'mqtt://127.0.0.1:0']) {
      expect(problemsOf(url)).toEqual([`c.yaml:3:10 bridges[0].url: expected mqtts://host:port with a port from 1 to 65535, got "${url}"`]);
    }
  });

  it('with a query or a fragment is reported rather than cut off', () => {
    expect(problemsOf('mqtts://cloud.example:8883?tls=1')).toEqual(['c.yaml:3:10 bridges[0].url: expected mqtts://host:port, without "?" or "#" parts, got "mqtts://cloud.example:8883?tls=1"']);
    expect(problemsOf('mqtts://cloud.example#x')).toEqual(['c.yaml:3:10 bridges[0].url: expected mqtts://host:port, without "?" or "#" parts, got "mqtts://cloud.example#x"']);
  });

  it('with credentials in it says where they go, without repeating the password', () => {
    expect(problemsOf('mqtts://site:s3cret@cloud.example:8883')).toEqual(['c.yaml:3:10 bridges[0].url: credentials do not go in the url; put them in username and password']);
  });

  it('of the usual forms, IPv6 literals included, is accepted', () => {
    for (const url of ['mqtts://cloud.example', 'mqtts://cloud.example:8883', 'mqtt://127.0.0.1:1883', 'mqtts://[::1]:8883']) expect(problemsOf(url)).toEqual([]);
  });
});
