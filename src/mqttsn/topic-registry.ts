/**
 * Topic ids of one client (MQTT-SN v1.2 §6.5): assigned when the client REGISTERs a name,
 * SUBSCRIBEs to a name without wildcards, or when the gateway REGISTERs a name before
 * delivering a wildcard match. Ids are 0x0001..0xFFFE: 0x0000 means "wildcard / no id"
 * in SUBACK and 0xFFFF is reserved (§5.3.11). The table is bounded per client; the
 * caller answers exhaustion with ReturnCode 0x01 "rejected: congestion" (§5.3.10).
 *
 * The client's own ids (its REGISTERs and SUBSCRIBEs by name) and the gateway's (REGISTERed
 * for wildcard matches) share the table, but the gateway's hold at most `gatewayLimit` of
 * it and give way: the least recently used gateway id is forgotten when the gateway needs
 * one more than its share, or when the table is full and the client REGISTERs. Never an id
 * still in an exchange (`inUse`: a REGISTER awaiting REGACK, a PUBLISH awaiting its answer).
 * A forgotten id's number is not handed out again before the allocation wraps around the
 * 65,534 ids, so a client that still holds it reads no other topic under it: a PUBLISH of
 * the client with it gets "rejected: invalid topic ID" (§6.6), and it REGISTERs again.
 *
 * Predefined ids (§6.7) are a separate namespace (TopicIdType 0b01) shared by all
 * clients, optionally overridden per client id.
 */

const FIRST_ID = 0x0001;
const LAST_ID = 0xfffe;

/** A stored entry: id, name, whether the client knows it, and `true` for an id the gateway REGISTERed. */
export type TopicEntry = [number, string, boolean] | [number, string, boolean, true];

export class TopicRegistry {
  private byId: Map<number, string> | undefined;
  private byName: Map<string, number> | undefined;
  /** Ids the client has confirmed (its own REGISTER, a SUBACK, or a REGACK for ours). */
  private known: Set<number> | undefined;
  /** Ids the gateway REGISTERed, least recently used first. */
  private gateway: Map<number, true> | undefined;
  private next = FIRST_ID;

  constructor(
    private readonly limit: number,
    /** The gateway's share of the table (default: half of it). */
    private readonly gatewayLimit = Math.max(1, Math.floor(limit / 2)),
  ) {}

  get size(): number {
    return this.byId?.size ?? 0;
  }

  /** How many ids the gateway REGISTERed (and still holds). */
  get gatewaySize(): number {
    return this.gateway?.size ?? 0;
  }

  nameOf(id: number): string | undefined {
    return this.byId?.get(id);
  }

  idOf(name: string): number | undefined {
    return this.byName?.get(name);
  }

  /** True when the client knows this id for its name (so a PUBLISH may use it). */
  isKnown(id: number): boolean {
    return this.known?.has(id) ?? false;
  }

  /**
   * The id for a name, assigning one if needed; undefined when the table is full.
   * `confirmed`: the client itself names the topic (REGISTER, SUBSCRIBE by name) and learns
   * the id from this exchange (REGACK, SUBACK); otherwise the gateway REGISTERs it.
   * `inUse`: ids in an exchange under way, which are never given up to make room.
   */
  assign(name: string, confirmed: boolean, inUse: (id: number) => boolean = () => false): number | undefined {
    let id = this.byName?.get(name);
    if (id !== undefined) {
      if (confirmed) {
        (this.known ??= new Set()).add(id);
        this.gateway?.delete(id); // the client's own from now on
      } else {
        this.touch(id);
      }
      return id;
    }
    if (!confirmed && this.gatewaySize >= this.gatewayLimit && !this.evict(inUse)) return undefined;
    if (this.size >= this.limit && !this.evict(inUse)) return undefined;
    id = this.freeId();
    (this.byId ??= new Map()).set(id, name);
    (this.byName ??= new Map()).set(name, id);
    if (confirmed) (this.known ??= new Set()).add(id);
    else (this.gateway ??= new Map()).set(id, true);
    return id;
  }

  /** A gateway id was used for a PUBLISH: it is the most recently used now. */
  touch(id: number): void {
    if (this.gateway?.delete(id)) this.gateway.set(id, true);
  }

  confirm(id: number): void {
    if (this.byId?.has(id)) (this.known ??= new Set()).add(id);
  }

  /**
   * The client said it does not know the id (PUBACK "invalid topic id"): it keeps its name, so
   * the next REGISTER names the same id and a client that still held it reads no other topic.
   */
  unconfirm(id: number): void {
    this.known?.delete(id);
  }

  /** The client no longer knows the id (REGACK refused it). */
  forget(id: number): void {
    const name = this.byId?.get(id);
    if (name === undefined) return;
    this.byId!.delete(id);
    this.byName!.delete(name);
    this.known?.delete(id);
    this.gateway?.delete(id);
  }

  /** Every id with its name and whether the client knows it (for the stored session). */
  entries(): TopicEntry[] {
    const out: TopicEntry[] = [];
    for (const [id, name] of this.byId ?? []) {
      const known = this.known?.has(id) ?? false;
      out.push(this.gateway?.has(id) ? [id, name, known, true] : [id, name, known]);
    }
    return out;
  }

  /** Puts back stored entries (a restart): up to the limit, duplicates of an id or name skipped. */
  restore(entries: ReadonlyArray<Readonly<TopicEntry>>): void {
    this.clear();
    for (const [id, name, known, byGateway] of entries) {
      if (this.size >= this.limit || id < FIRST_ID || id > LAST_ID || this.byId?.has(id) || this.byName?.has(name)) continue;
      (this.byId ??= new Map()).set(id, name);
      (this.byName ??= new Map()).set(name, id);
      if (known) (this.known ??= new Set()).add(id);
      if (byGateway === true) (this.gateway ??= new Map()).set(id, true);
      if (id >= this.next) this.next = id === LAST_ID ? FIRST_ID : id + 1;
    }
  }

  clear(): void {
    this.byId = undefined;
    this.byName = undefined;
    this.known = undefined;
    this.gateway = undefined;
    this.next = FIRST_ID;
  }

  /** Forgets the least recently used gateway id not in use; false if there is none. */
  private evict(inUse: (id: number) => boolean): boolean {
    for (const id of this.gateway?.keys() ?? []) {
      if (inUse(id)) continue;
      this.forget(id);
      return true;
    }
    return false;
  }

  private freeId(): number {
    // The table is smaller than the id space, so a free id exists; skip ids in use after wrap.
    for (;;) {
      const id = this.next;
      this.next = id === LAST_ID ? FIRST_ID : id + 1;
      if (!this.byId?.has(id)) return id;
    }
  }
}

/** Predefined topic ids from the configuration: global ones and per-client overrides. */
export class PredefinedTopics {
  private readonly globalByName = new Map<string, number>();

  constructor(
    private readonly global: ReadonlyMap<number, string>,
    private readonly perClient: ReadonlyMap<string, ReadonlyMap<number, string>>,
  ) {
    for (const [id, name] of global) this.globalByName.set(name, id);
  }

  /** From the config: `predefined_topics` and `clients.<id>.predefined_topics` (ids as strings). */
  static fromConfig(global: Record<string, string>, clients: Record<string, { predefined_topics: Record<string, string> }>): PredefinedTopics {
    const ids = (rec: Record<string, string>) => new Map(Object.entries(rec).map(([k, v]) => [Number(k), v]));
    return new PredefinedTopics(ids(global), new Map(Object.entries(clients).map(([id, c]) => [id, ids(c.predefined_topics)])));
  }

  nameOf(clientId: string | undefined, id: number): string | undefined {
    if (clientId !== undefined) {
      const own = this.perClient.get(clientId)?.get(id);
      if (own !== undefined) return own;
    }
    return this.global.get(id);
  }

  /** The predefined id a client knows for a topic name, if any (its own table first). */
  idOf(clientId: string, name: string): number | undefined {
    const own = this.perClient.get(clientId);
    if (own !== undefined) {
      for (const [id, n] of own) if (n === name) return id;
    }
    const id = this.globalByName.get(name);
    // A per-client entry with the same id redefines it for that client.
    if (id !== undefined && own?.has(id)) return undefined;
    return id;
  }
}
