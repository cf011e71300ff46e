import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const unitPath = fileURLToPath(new URL('../../systemd/outpost.service', import.meta.url));
const unit = readFileSync(unitPath, 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'outpost-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `Key=value` lines of the unit (all occurrences per key, comments dropped). */
function directives(text: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
  }
  return map;
}

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

describe('systemd/outpost.service', () => {
  const d = directives(unit);
  const one = (key: string) => d.get(key)?.at(-1);

  it('is a notify service with a watchdog that restarts on failure, but not on a bad config', () => {
    expect(one('Type')).toBe('notify');
    expect(one('WatchdogSec')).toMatch(/^\d+s?$/);
    expect(one('Restart')).toBe('on-failure');
    // A bad config (exit 2) is not restarted over and over.
    expect(one('RestartPreventExitStatus')).toBe('2');
    // Killed by a SIGHUP before node ran any of outpost: systemd would take it for a clean stop.
    expect(one('RestartForceExitStatus')).toBe('SIGHUP');
  });

  it('runs the installed outpost with the config in the configuration directory', () => {
    expect(one('ExecStart')).toMatch(/\/outpost run --config \/etc\/outpost\/outpost\.yaml$/);
    expect(one('ConfigurationDirectory')).toBe('outpost');
    expect(one('StateDirectory')).toBe('outpost');
  });

  it('runs as a dedicated user that can open serial ports', () => {
    expect(one('User')).toBe('outpost');
    expect(one('SupplementaryGroups')).toBe('dialout');
    expect(d.get('DeviceAllow')).toContain('char-ttyUSB rw');
  });

  it('is hardened but still allows TCP, UDP and unix sockets', () => {
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('RestrictAddressFamilies')?.split(/\s+/)).toEqual(['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK']);
  });

  it('reloads by sending SIGHUP to the main process, which re-reads the config', () => {
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
  });

  it('passes systemd-analyze verify', (ctx) => {
    if (!hasCommand('systemd-analyze')) {
      console.log('skipped: systemd-analyze is not installed (apt-get install systemd)');
      ctx.skip();
    }
    // verify checks that ExecStart exists; outpost is not installed here, so point the
    // unit at a stub executable and leave every other line as shipped.
    const stub = join(tmp, 'outpost');
    writeFileSync(stub, '#!/bin/sh\nexit 0\n');
    chmodSync(stub, 0o755);
    const copy = join(tmp, 'outpost.service');
    writeFileSync(copy, unit.replace(/^ExecStart=\S+/m, `ExecStart=${stub}`));
    // Unknown keys and bad values are only warnings (exit 0): stderr must be empty too.
    const r = spawnSync('systemd-analyze', ['verify', copy], { cwd: tmp, encoding: 'utf8' });
    expect({ status: r.status, output: `${r.stdout}${r.stderr}` }).toEqual({ status: 0, output: '' });
  });
});
