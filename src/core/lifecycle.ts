/**
 * Every long-lived component is a Service: the constructor does no I/O,
 * `start` acquires resources, `stop` releases all of them (timers, sockets,
 * listeners) and is idempotent. Services stop in reverse start order.
 */
export interface Service {
  readonly name: string;
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
}

/** Starts services in order; on failure stops the ones already started, in reverse. */
export class ServiceGroup {
  private readonly started: Service[] = [];

  constructor(private readonly services: readonly Service[]) {}

  async start(signal: AbortSignal): Promise<void> {
    for (const svc of this.services) {
      if (signal.aborted) break;
      try {
        await svc.start(signal);
      } catch (err) {
        await this.stop();
        throw err;
      }
      this.started.push(svc);
    }
  }

  async stop(): Promise<void> {
    while (this.started.length > 0) {
      const svc = this.started.pop()!;
      await svc.stop();
    }
  }
}
