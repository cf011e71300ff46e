/**
 * Authorization as sources other than MQTT clients see it (MQTT-SN sensors, serial
 * devices, bridges bringing messages in): the broker implements it from the ACL file in
 * force at the time of asking, so a reloaded ACL applies to the next check.
 */
import type { Origin } from './message.js';

export interface SourceGrants {
  /** Nothing is restricted for this source (no ACL, or none for its kind). */
  readonly unrestricted: boolean;
  canWrite(topic: string): boolean;
  canRead(topic: string): boolean;
  /** all: every topic the filter matches is readable; some: check each message; none: refuse. */
  readAccess(filter: string): 'all' | 'some' | 'none';
}

export interface Authorizer {
  grantsFor(origin: Origin): SourceGrants;
}

export const allowEverything: Authorizer = {
  grantsFor: () => ({ unrestricted: true, canWrite: () => true, canRead: () => true, readAccess: () => 'all' }),
};
