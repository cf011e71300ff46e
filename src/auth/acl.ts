/**
 * The ACL file: who may read (subscribe and receive) and write (publish) which topics.
 * Deny by default: once an ACL file is configured, MQTT clients get only what a rule grants.
 *
 *   # comment                     rules before any section apply to everyone ("all")
 *   read   $SYS/outpost/#
 *   user alice                    section: MQTT clients authenticated as alice (the rest of
 *                                 the line: a certificate CN may hold spaces; so may a client id)
 *   readwrite home/#
 *   client dashboard-1            section: MQTT clients with this client id
 *   read   sensors/#
 *   anonymous                     section: MQTT clients without a verified user name
 *   all                           section: everyone again
 *   write  devices/%u/#           %u = the user name, %c = the client id (or device, bridge name)
 *   mqttsn sensor-17              section: an MQTT-SN client id
 *   serial boiler                 section: a serial device id
 *   bridge cloud                  section: a bridge's inbound publishes (cloud → local)
 *
 * MQTT clients are always checked. MQTT-SN clients, serial devices and bridges are
 * checked only when the file has at least one section of their kind (then deny by
 * default for that kind too), so an ACL written for MQTT clients does not silence sensors.
 */
import type { SourceKind } from '../core/message.js';
import { topicMatches, validateTopicFilter } from '../core/topic.js';
import { throwFileProblems } from './file-problems.js';
import { filterRelation } from './filter-relation.js';

type SectionKind = 'all' | 'anonymous' | 'user' | 'client' | 'mqttsn' | 'serial' | 'bridge';

interface Rule {
  read: boolean;
  write: boolean;
  /** The filter as written, with %u / %c still in it. */
  filter: string;
  usesUser: boolean;
  usesClient: boolean;
}

/** Who is asking: an MQTT client (verified user name, client id) or another source. */
export interface Subject {
  kind: SourceKind;
  /** MQTT: the client id; MQTT-SN: its client id; serial: the device id; bridge: its name. */
  id: string;
  /** MQTT only: the verified user name (password file or certificate), if any. */
  user?: string;
}

/** What a subscription filter may receive: everything, some topics (check each), nothing. */
export type ReadAccess = 'all' | 'some' | 'none';

/** The rules that apply to one subject, with %u and %c filled in. */
export interface Grants {
  readonly unrestricted: boolean;
  canWrite(topic: string): boolean;
  canRead(topic: string): boolean;
  readAccess(filter: string): ReadAccess;
}

export const ALLOW_ALL: Grants = {
  unrestricted: true,
  canWrite: () => true,
  canRead: () => true,
  readAccess: () => 'all',
};

/** Publish decisions remembered per subject (a sensor publishes to the same few topics). */
const WRITE_CACHE_SIZE = 128;

class RuleGrants implements Grants {
  readonly unrestricted = false;
  private readonly writes = new Map<string, boolean>();
  constructor(private readonly rules: { read: boolean; write: boolean; filter: string }[]) {}

  canWrite(topic: string): boolean {
    let ok = this.writes.get(topic);
    if (ok !== undefined) return ok;
    ok = false;
    for (const r of this.rules) {
      if (r.write && topicMatches(r.filter, topic)) {
        ok = true;
        break;
      }
    }
    // Bounded: a client cycling through many topics starts over rather than growing it.
    if (this.writes.size >= WRITE_CACHE_SIZE) this.writes.clear();
    this.writes.set(topic, ok);
    return ok;
  }

  canRead(topic: string): boolean {
    for (const r of this.rules) if (r.read && topicMatches(r.filter, topic)) return true;
    return false;
  }

  readAccess(filter: string): ReadAccess {
    let some = false;
    for (const r of this.rules) {
      if (!r.read) continue;
      const rel = filterRelation(r.filter, filter);
      if (rel === 'covers') return 'all';
      if (rel === 'overlaps') some = true;
    }
    return some ? 'some' : 'none';
  }
}

/** Where the rules under a malformed section line go (dropped: no subject has this key). */
const BROKEN_SECTION = '\0broken';
const SECTION_WITH_NAME = new Set<SectionKind>(['user', 'client', 'mqttsn', 'serial', 'bridge']);
const ACCESS: Record<string, { read: boolean; write: boolean }> = {
  read: { read: true, write: false },
  write: { read: false, write: true },
  readwrite: { read: true, write: true },
};

export class Acl {
  private readonly sections = new Map<string, Rule[]>();
  /** Source kinds besides MQTT that the file names, and so checks. */
  private readonly checkedKinds = new Set<SourceKind>(['mqtt']);

  /** Parses the file's text; throws `file:line: what is wrong; how to fix` for every bad line (one line each). */
  static parse(text: string, file: string): Acl {
    const { acl, problems } = Acl.read(text, file);
    throwFileProblems({ file, problems });
    return acl;
  }

  /** The rules of the good lines, and one `file:line: what is wrong; how to fix` per bad line. */
  static read(text: string, file: string): { acl: Acl; problems: string[] } {
    const acl = new Acl();
    const problems: string[] = [];
    let section = 'all';
    /** A file's top is "all" for read/write lines; mosquitto's `topic` lines there mean anonymous. */
    let explicitAll = false;
    acl.sections.set(section, []);
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const what = acl.readLine(line, section, explicitAll);
      if (typeof what === 'string') {
        problems.push(`${file}:${i + 1}: ${what}; see config/acl.example for the format`);
        // The rules under a section line that is wrong belong to no one (the file is refused anyway).
        if (/^(all|anonymous|user|client|mqttsn|serial|bridge)(\s|$)/.test(line)) section = BROKEN_SECTION;
        return;
      }
      if (what !== undefined) {
        section = what.section;
        explicitAll ||= what.explicitAll;
      }
    });
    acl.sections.delete(BROKEN_SECTION);
    return { acl, problems };
  }

  /** One non-blank line: a section change, a rule added (undefined), or what is wrong with it. */
  private readLine(line: string, section: string, explicitAll: boolean): { section: string; explicitAll: boolean } | string | undefined {
    const m = /^(\S+)(?:\s+(.*))?$/.exec(line)!;
    const word = m[1]!;
    const rest = (m[2] ?? '').trim();
    if (word === 'all' || word === 'anonymous') {
      if (rest !== '') return `"${word}" takes no name, got "${rest}"`;
      return { section: word, explicitAll: true };
    }
    if (SECTION_WITH_NAME.has(word as SectionKind)) {
      const spaced = /\s/.test(rest);
      // A user name may be a certificate CN ("Pump Station 3") and a client id may hold spaces:
      // for those the rest of the line is the name, as in mosquitto. A rule written on the
      // section line ("user alice readwrite home/#") is still refused, not taken as a name.
      if (spaced && (word === 'user' || word === 'client') && /(^|\s)(read|write|readwrite|topic|pattern)\s+\S*[/#+]/.test(rest)) {
        return `"${word} ${rest.slice(0, 64)}": a rule goes on its own line below the section line`;
      }
      if (rest === '' || (spaced && word !== 'user' && word !== 'client')) return `"${word}" needs one name without spaces, e.g. "${word} sensor-1"`;
      if (word === 'mqttsn' || word === 'serial' || word === 'bridge') this.checkedKinds.add(word);
      return { section: `${word} ${rest}`, explicitAll: false };
    }
    if (!(word in ACCESS) && word !== 'topic' && word !== 'pattern') {
      return `unknown keyword "${word}": expected read, write, readwrite (or mosquitto's topic, pattern), or a section (user, client, anonymous, all, mqttsn, serial, bridge)`;
    }
    let access = word;
    let filter = rest;
    let target = section;
    if (word === 'topic' || word === 'pattern') {
      // mosquitto's acl_file lines, meaning what they mean there: `topic [access] filter`
      // for the current user (before any `user` line: anonymous clients), `pattern
      // [access] filter` for everyone; the access defaults to readwrite.
      const m2 = /^(read|write|readwrite|deny)\s+(.*)$/.exec(rest);
      access = m2?.[1] ?? 'readwrite';
      filter = (m2?.[2] ?? rest).trim();
      if (access === 'deny') return '"deny" rules are not supported: everything not granted is denied already; remove the line';
      if (word === 'pattern') target = 'all';
      else if (section === 'all' && !explicitAll) target = 'anonymous';
    }
    if (filter === '') return `"${word}" needs a topic filter, e.g. "${word} sensors/#"`;
    const check = validateTopicFilter(filter.replaceAll('%u', 'u').replaceAll('%c', 'c'));
    if (!check.ok) return `topic filter "${filter}" is not valid: ${check.reason}`;
    const rule: Rule = { ...ACCESS[access]!, filter, usesUser: filter.includes('%u'), usesClient: filter.includes('%c') };
    let list = this.sections.get(target);
    if (list === undefined) this.sections.set(target, (list = []));
    list.push(rule);
    return undefined;
  }

  /**
   * Whether a section grants rights by a client id (`client`, `mqttsn`): nothing verifies
   * those, so reading the file tells which id to claim (file-permissions.ts).
   */
  get grantsByClientId(): boolean {
    for (const key of this.sections.keys()) if (key.startsWith('client ') || key.startsWith('mqttsn ')) return true;
    return false;
  }

  /** Whether sources of this kind are checked at all (system messages never are). */
  checks(kind: SourceKind): boolean {
    return this.checkedKinds.has(kind);
  }

  /** The rules for one subject, %u and %c substituted. */
  grantsFor(s: Subject): Grants {
    if (!this.checks(s.kind)) return ALLOW_ALL;
    const keys = ['all'];
    if (s.kind === 'mqtt') {
      if (s.user === undefined) keys.push('anonymous');
      else keys.push(`user ${s.user}`);
      keys.push(`client ${s.id}`);
    } else {
      keys.push(`${s.kind} ${s.id}`);
    }
    const rules: { read: boolean; write: boolean; filter: string }[] = [];
    for (const key of keys) {
      for (const r of this.sections.get(key) ?? []) {
        // A name that would add levels or wildcards to the filter cannot be substituted safely.
        if (r.usesUser && (s.user === undefined || !safeLevel(s.user))) continue;
        if (r.usesClient && !safeLevel(s.id)) continue;
        // In one pass: a user name holding "%c" (or a client id holding "%u") stays as it is,
        // not substituted again into another client's or user's topics.
        const filter = r.usesUser || r.usesClient ? r.filter.replace(/%[uc]/g, (m) => (m === '%u' ? s.user! : s.id)) : r.filter;
        rules.push({ read: r.read, write: r.write, filter });
      }
    }
    return new RuleGrants(rules);
  }
}

function safeLevel(name: string): boolean {
  return name.length > 0 && !/[/+#]/.test(name);
}
