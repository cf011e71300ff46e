/**
 * One error class for the whole gateway. The code says which area failed and why;
 * the message is one sentence an operator can act on.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'CLI_USAGE'
  | 'BROKER_LISTEN_FAILED'
  | 'BROKER_PROTOCOL'
  | 'BROKER_STOPPED'
  | 'MQTTSN_PROTOCOL'
  | 'SERIAL_PORT'
  | 'STORE_UNAVAILABLE'
  /** The database was written by a newer outpost: starting again cannot help. */
  | 'STORE_INCOMPATIBLE'
  | 'STORE_FULL'
  /** store.dir (or a file in it) cannot be written by this user, or is on a read-only disk: starting again cannot help. */
  | 'STORE_NOT_WRITABLE'
  | 'BRIDGE_UPSTREAM'
  | 'METRICS_LISTEN_FAILED';

export class OutpostError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutpostError';
    this.code = code;
  }
}

export function isOutpostError(err: unknown, code?: ErrorCode): err is OutpostError {
  return err instanceof OutpostError && (code === undefined || err.code === code);
}
