/**
 * The broker's side of access control: the AccessControl in force, the queue that bounds
 * password verifications, and the grants of non-MQTT sources (cached per origin until the
 * access control changes). Replacing the access control re-grades every session's
 * subscriptions, so a reload applies at once. Only a client that authenticated with a
 * password its user no longer has (deleted from the password file, or given a new one) is
 * disconnected, as mosquitto does on reload: `outpost passwd -D` and a reload lock a user out.
 */
import { OPEN_ACCESS, type AccessControl } from '../auth/access-control.js';
import type { Grants } from '../auth/acl.js';
import type { Origin } from '../core/message.js';
import type { Connection } from './connection.js';
import { applyReadGrants } from './read-guard.js';
import type { Session } from './session.js';
import { VerifyQueue } from './verify-queue.js';

const MAX_SOURCE_GRANTS = 1024;

export class AccessState {
  current: AccessControl;
  readonly verifyQueue = new VerifyQueue(() => this.current.maxConcurrentChecks);
  private readonly sources = new Map<string, Grants>();

  constructor(initial: AccessControl = OPEN_ACCESS) {
    this.current = initial;
  }

  replace(ac: AccessControl, sessions: Iterable<Session>): void {
    const before = this.current;
    this.current = ac;
    this.sources.clear();
    for (const session of [...sessions]) {
      const conn = session.link as Connection | undefined;
      if (conn !== undefined && conn.user !== undefined && conn.peer.identity === undefined && !ac.keepsPasswordUser(conn.user, before)) {
        // v5: DISCONNECT 0x87 with the reason; the Will applies as for any server-side close.
        conn.violate({ outcome: 'not-authorized', detail: `user "${conn.user.slice(0, 64)}" was deleted from the password file or given a new password` });
      }
      const grants = ac.grantsFor({ kind: 'mqtt', id: session.clientId, user: session.user });
      if (conn !== undefined) conn.grants = grants;
      applyReadGrants(session.subscriptions.values(), grants);
    }
  }

  /** `key` tells origins apart (the broker's originKey). */
  grantsFor(origin: Origin, key: string): Grants {
    let g = this.sources.get(key);
    if (g === undefined) {
      g = this.current.grantsFor({ kind: origin.kind, id: origin.id });
      // Bounded by MQTT-SN client ids, devices and bridges; cleared rather than grown past it.
      if (this.sources.size >= MAX_SOURCE_GRANTS) this.sources.clear();
      this.sources.set(key, g);
    }
    return g;
  }
}
