/**
 * The root logger, made once in main and passed down; components derive
 * `log.child({ component: 'broker' })`. Nothing else in the gateway creates a logger.
 *
 * Output is written synchronously in this process (no worker-thread transport), so the
 * last lines before an exit are never lost: JSON lines for journald and log shippers,
 * or pino-pretty's formatter on a terminal.
 */
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { LogConfig } from '../config/schema.js';

export type { Logger };

export interface RootLoggerOptions {
  level: LogConfig['level'];
  format: LogConfig['format'];
  /** Where lines go; default stdout (fd 1), written synchronously. */
  destination?: DestinationStream;
  /** Whether the output is a terminal, for format 'auto'; default: stdout's isTTY. */
  isTty?: boolean;
}

/** Secrets never reach the log, whatever a component passes in its fields. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'config.*.password',
  'key',
  '*.key',
  'passphrase',
  '*.passphrase',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'token',
  '*.token',
];

/** Resolves once everything logged so far has reached the destination. */
export function flushLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => log.flush(() => resolve()));
}

export function createRootLogger(options: RootLoggerOptions): Logger {
  const isTty = options.isTty ?? (options.destination === undefined && process.stdout.isTTY === true);
  const pretty = options.format === 'pretty' || (options.format === 'auto' && isTty);
  const out = options.destination ?? pino.destination({ dest: 1, sync: true });
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // pid and hostname are noise on a single-process appliance; journald records both.
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pretty ? prettyDestination(out, isTty) : out,
  );
}

/**
 * A JSON log line whose strings keep their control characters visible once pino-pretty has
 * parsed it: a client id or user name is chosen by a client, and its ESC or CR would reach
 * the terminal raw (clear it, retitle it, overwrite a line). C0 escapes (\u001b, \r, \b, \f)
 * are escaped once more and raw DEL and C1 characters (which JSON leaves as they are) are
 * written as escaped \uNNNN text; escaped backslashes are kept as they are, and newlines and tabs
 * stay what they are (stack traces).
 */
export function visibleControls(line: string): string {
  return line.replace(/\\(\\|u00[01][0-9a-fA-F]|[bfr])|[\u007f-\u009f]/g, (m, esc?: string) => {
    if (esc === undefined) return `\\\\u${m.charCodeAt(0).toString(16).padStart(4, '0')}`;
    return esc === '\\' ? m : `\\${m}`;
  });
}

/**
 * pino-pretty's formatter used as a plain synchronous destination: each line is
 * formatted and written before `log.info()` returns, unlike a transport stream.
 */
function prettyDestination(out: DestinationStream, colorize: boolean): DestinationStream {
  // Required only here: a service logging JSON to journald never loads pino-pretty and its
  // dependencies (about a MiB resident). It is CommonJS, so require() loads it synchronously.
  const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  const format = pinoPretty.prettyFactory({
    colorize: colorize && pinoPretty.isColorSupported,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
  const flushable = out as DestinationStream & { flush?: (cb: (err?: Error) => void) => void };
  return Object.assign(
    {
      write(line: string) {
        out.write(format(visibleControls(line)));
      },
    },
    typeof flushable.flush === 'function' ? { flush: flushable.flush.bind(out) } : {},
  );
}
