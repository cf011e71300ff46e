/**
 * The client's state as the gateway sees it, MQTT-SN v1.2 §6.14 Figure 4: a pure
 * transition function, so the whole table is tested without sockets or timers. The
 * gateway performs the returned actions in order.
 *
 *            CONNECT                      DISCONNECT(duration)
 *   disconnected ───────▶ active ─────────────────────────────▶ asleep ◀──┐
 *        ▲                  │ keepalive expires                   │  PINGREQ(ClientId)
 *        │ DISCONNECT       ▼                                     ▼       │ buffer delivered,
 *        └────────────── lost ◀──────── sleep timer expires ── awake ──────┘ PINGRESP sent
 */

export type ClientState = 'disconnected' | 'active' | 'asleep' | 'awake' | 'lost';

export type ClientEvent =
  /** CONNECT accepted (after the Will prompts, if any), §6.2. */
  | 'connect'
  /** DISCONNECT without Duration, §6.12. */
  | 'disconnect'
  /** DISCONNECT with Duration, §6.14. */
  | 'sleep'
  /** PINGREQ carrying the ClientId, or from the sleeper's address without it, §6.14. */
  | 'wake'
  /** Every message buffered at wake-up was delivered (QoS 1/2 acknowledged), §6.14. */
  | 'flushed'
  /** Keep Alive supervision expired, §6.11. */
  | 'keepalive-expired'
  /** Sleep timer expired without a PINGREQ/CONNECT, §6.14. */
  | 'sleep-expired'
  /** N_retry retransmissions went unanswered, §6.13. */
  | 'retries-exhausted'
  /** Another client CONNECTed from this client's address: it cannot be reached any more. */
  | 'address-reused'
  /** Restored owing its Will after a restart of the gateway, and not back in time (persistence.ts). */
  | 'not-back';

export type ClientAction =
  | 'arm-keepalive'
  | 'arm-sleep'
  | 'stop-timer'
  | 'publish-will'
  | 'deliver-buffered'
  | 'send-pingresp'
  /** Messages for the client are held instead of sent. */
  | 'hold';

export interface Transition {
  state: ClientState;
  actions: readonly ClientAction[];
}

const lose: Transition = { state: 'lost', actions: ['stop-timer', 'publish-will', 'hold'] };

/**
 * Returns the next state and what to do, or undefined when the event does not apply in
 * this state (the gateway ignores it: e.g. a keepalive expiry racing a DISCONNECT).
 */
export function transition(state: ClientState, event: ClientEvent): Transition | undefined {
  switch (event) {
    case 'connect':
      // From every state: a CONNECT (re)starts the session's connection (§6.2); from
      // asleep/awake/lost it also ends the sleep or the loss (§6.14).
      return { state: 'active', actions: ['arm-keepalive', 'deliver-buffered'] };
    case 'disconnect':
      // No Will on a DISCONNECT (§6.12, like MQTT's normal disconnect).
      if (state === 'disconnected') return undefined;
      return { state: 'disconnected', actions: ['stop-timer', 'hold'] };
    case 'sleep':
      if (state === 'active' || state === 'awake' || state === 'asleep') return { state: 'asleep', actions: ['arm-sleep', 'hold'] };
      return undefined;
    case 'wake':
      if (state === 'asleep') return { state: 'awake', actions: ['deliver-buffered'] };
      if (state === 'awake') return { state: 'awake', actions: [] };
      return undefined;
    case 'flushed':
      if (state === 'awake') return { state: 'asleep', actions: ['send-pingresp', 'arm-sleep', 'hold'] };
      return undefined;
    case 'keepalive-expired':
      return state === 'active' ? lose : undefined;
    case 'sleep-expired':
      return state === 'asleep' || state === 'awake' ? lose : undefined;
    case 'retries-exhausted':
      return state === 'active' || state === 'awake' ? lose : undefined;
    case 'address-reused':
      // A sleeper is unreachable anyway and comes back by its ClientId, from whatever port
      // its NAT gives it (§6.14): only its sleep timer can make it lost. An awake one stops
      // being sent to until its next PINGREQ.
      if (state === 'asleep') return undefined;
      if (state === 'awake') return { state: 'asleep', actions: ['arm-sleep', 'hold'] };
      return state === 'active' ? lose : undefined;
    case 'not-back':
      return state === 'disconnected' ? lose : undefined;
  }
}

/** Whether messages may be sent to the client now (otherwise they are buffered). */
export function canSend(state: ClientState): boolean {
  return state === 'active' || state === 'awake';
}
