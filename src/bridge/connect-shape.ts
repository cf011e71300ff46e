/**
 * What our CONNECT carries, adapted to what the cloud broker refused on earlier attempts:
 * the 3.1.1 bridge flag, the retain flag and the QoS of the Will (the state topic), and
 * whether the CONNECT goes header first to see whether the broker refuses its size.
 *
 * A broker tells an MQTT 5 client why it refuses a CONNECT (CONNACK 0x9A, 0x9B). A 3.1.1
 * client often learns nothing: Mosquitto closes the connection before CONNACK for a CONNECT
 * larger than its `max_packet_size` (it cannot send a CONNACK 0x95: it reads only the fixed
 * header), and, for a 3.1.1 client, for a retained Will without `retain_available` and for a
 * Will above `max_qos`. The two kinds are told apart by a probe:
 *
 *   close before CONNACK ─► next CONNECT: fixed header ─(hold the body probeMs)─► body
 *                                            │ closed while the body is held back
 *                                            ▼
 *                        the broker refused the length: "CONNECT too large" (size; no Will change)
 *   closed after the body (3.1.1) ─► every CLOSES_PER_STEP in a row, the next Will:
 *        retain off ─► QoS 0 (retain on) ─► QoS 0 and retain off   (each a guess for one link)
 *
 * Closing on the fixed header alone is how a broker refuses a Remaining Length over its limit
 * (Mosquitto, EMQX, HiveMQ check it before reading the rest); nothing else in a CONNECT has
 * been read by then. A link slower than probeMs (round trip) hides the probe's answer: the
 * close then comes after the body and counts as a refusal of the Will, as before.
 */
import type { QoS } from '../core/message.js';
import type { UpstreamOptions } from './upstream.js';
import { describeClose, describeNoRetainCloses, describeQos0Closes, describeSocketError, describeWillQos0, type Failure } from './upstream-failures.js';

/** Closes before CONNACK in a row after which a 3.1.1 remote is taken to refuse our Will as it is. */
export const CLOSES_PER_STEP = 3;
/** Longest wait for a close after the CONNECT's fixed header (a round trip of a slow uplink). */
const PROBE_MAX_MS = 500;

type Will = UpstreamOptions['will'];

export class ConnectShape {
  /** The remote answered CONNECT with protocol level 0x84 by CONNACK 1 (see UpstreamOptions.bridgeMode). */
  bridgeFlagRefused = false;
  /**
   * The remote takes no retained messages (MQTT 5 Retain Available 0, or CONNACK 0x9A for our
   * retained Will): the Will, the state messages and forwarded messages go without the flag.
   */
  noRetain = false;
  /** noRetain is a guess from closes before CONNACK (3.1.1): it holds for one link only. */
  private noRetainGuessed = false;
  /** The remote takes QoS 0 only (CONNACK 0x9B for our QoS 1 Will, or a 3.1.1 guess): the Will goes at QoS 0. */
  willQos0 = false;
  /** willQos0 from closes before CONNACK (3.1.1): the remote is then taken to take QoS 0 only, for one link. */
  private willQos0Guessed = false;
  /** Closes before CONNACK in a row, after the whole CONNECT, by a 3.1.1 remote. */
  private closes = 0;
  /** The next CONNECT goes header first (see the diagram). */
  private probeNext = false;
  /** The current attempt went header first. */
  private probing = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly o: Pick<UpstreamOptions, 'protocolVersion' | 'will' | 'connectTimeoutMs'>,
  ) {}

  /** The Will of the next CONNECT. */
  will(): Will {
    const w = this.o.will;
    return w === undefined ? w : { ...w, retain: w.retain && !this.noRetain, qos: this.willQos0 ? 0 : w.qos };
  }

  /** Milliseconds to hold the next CONNECT's body back after its fixed header (0: send it whole). */
  probeMs(): number {
    this.probing = this.probeNext;
    return this.probing ? Math.max(1, Math.min(PROBE_MAX_MS, Math.floor(this.o.connectTimeoutMs / 4))) : 0;
  }

  /**
   * The highest QoS a 3.1.1 remote is taken to accept (it has no Maximum QoS to say so): 0 once
   * it took the bridge only with a QoS 0 Will, as Mosquitto's `max_qos 0` does.
   */
  get maximumQoS(): QoS | undefined {
    return this.willQos0Guessed ? 0 : undefined;
  }

  /** A CONNACK refusing us: the failure when it is one a changed CONNECT answers (then tried at once), else undefined. */
  refused(code: number, bridgeMode: boolean): Failure | undefined {
    const { protocolVersion: v, will } = this.o;
    const where = `${this.host}:${this.port}`;
    if (code === 1 && v === 4 && bridgeMode && !this.bridgeFlagRefused) {
      // A broker that does not know the bridge flag (0x84): connect as a plain client from now on.
      this.bridgeFlagRefused = true;
      return { sentence: `broker ${where} refused the 3.1.1 bridge flag (protocol level 0x84); connecting as a plain client, so it may echo our publishes on both-direction rules`, key: 'bridge-flag' };
    }
    if (code === 0x9a && v === 5 && will?.retain === true && !this.noRetain) {
      // A broker without retained messages refuses a retained Will [MQTT-3.2.2-13].
      this.noRetain = true;
      return { sentence: `broker ${where} takes no retained messages (CONNACK 0x9a for our retained Will); connecting again with the state topic and retained messages sent without the retain flag`, key: 'no-retain' };
    }
    if (code === 0x9b && v === 5 && (will?.qos ?? 0) > 0 && !this.willQos0) {
      // A broker without QoS 1 refuses a Will above its Maximum QoS [MQTT-3.2.2-12].
      this.willQos0 = true;
      return describeWillQos0(this.host, this.port, will?.qos ?? 1);
    }
    return undefined;
  }

  /** The retain flag is taken off a message of ours: the remote takes no retained messages. */
  noRetainNow(): void {
    this.noRetain = true;
  }

  /** CONNACK 0. */
  connected(): void {
    this.closes = 0;
    this.probeNext = false;
  }

  /**
   * A link that was up is lost: a guess (no retain flag, QoS 0 only) is tried again with the
   * configured Will on the next link. Closes before CONNACK also come from a flaky uplink (a
   * load balancer whose broker is away); a guess kept for the rest of the run would send every
   * message at QoS 0, which the cloud's offline subscribers never get. A cloud that really takes
   * QoS 0 only costs six quick attempts per link instead.
   */
  linkLost(): void {
    if (this.noRetainGuessed) this.noRetain = this.noRetainGuessed = false;
    if (this.willQos0Guessed) this.willQos0 = this.willQos0Guessed = false;
  }

  /**
   * An attempt ended before CONNACK with `failure`: the failure to report, told apart by the
   * probe, and the Will of the next attempt changed after enough closes (3.1.1).
   */
  attemptFailed(failure: Failure): Failure {
    const probed = this.probing;
    this.probing = false;
    if (failure.key === 'connect-too-large') {
      this.probeNext = true; // each attempt tells again, so a broker whose limit was raised is seen at once
      this.closes = 0;
      return failure;
    }
    const closed = failure.key === describeClose(this.host, this.port, 'connack').key || failure.key === describeSocketError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), this.host, this.port, 'connack').key;
    if (!closed) {
      this.closes = 0;
      this.probeNext = false;
      return failure;
    }
    // The first close of a run is followed by one probe; once it saw the whole CONNECT read, the Will is what the broker refuses.
    this.probeNext = this.closes === 0 && !probed;
    if (this.o.protocolVersion !== 4 || this.o.will === undefined) return failure;
    if (++this.closes % CLOSES_PER_STEP !== 0) return failure;
    return this.nextWill() ?? failure;
  }

  /** The next Will a 3.1.1 broker may take: without the retain flag, at QoS 0, at QoS 0 without the flag. */
  private nextWill(): Failure | undefined {
    const w = this.o.will!;
    if (w.retain && !this.noRetain && !this.willQos0) {
      this.noRetain = this.noRetainGuessed = true;
      return describeNoRetainCloses(this.host, this.port, this.closes);
    }
    if (w.qos > 0 && !this.willQos0) {
      if (this.noRetainGuessed) this.noRetain = this.noRetainGuessed = false;
      this.willQos0 = this.willQos0Guessed = true;
      return describeQos0Closes(this.host, this.port, this.closes, w.qos);
    }
    if (this.willQos0Guessed && w.retain && !this.noRetain) {
      this.noRetain = this.noRetainGuessed = true;
      return describeNoRetainCloses(this.host, this.port, this.closes);
    }
    return undefined;
  }
}
