/**
 * Reads a file a user names in the config: the config file and its device maps
 * (serial.include), the password file and ACL, TLS certificates, keys and CRLs; at start, in
 * `outpost check`, `outpost passwd` and on a SIGHUP reload. Only a regular file of at most
 * MAX_FILE_BYTES (or the caller's bound) is read:
 *
 * - a FIFO, a character device (/dev/zero, /dev/ttyUSB0), a socket or a directory named by
 *   mistake is refused by what it is. readFileSync blocked for ever in open() on a FIFO
 *   without a writer, and read /dev/zero until memory ran out: `outpost check` hung, and a
 *   SIGHUP reload stopped the whole gateway (the read runs on the event loop);
 * - a file over MAX_FILE_BYTES (a 2 GB log or disk image named by mistake) is refused by its
 *   size before a byte is read, and a file that grows while it is read stops at the bound.
 *
 *   stat(path) ─ not regular? refuse ─▶ open(O_NONBLOCK|O_NOCTTY) ─▶ fstat: same checks
 *     (the path may have been swapped between the two) ─▶ read at most MAX_FILE_BYTES + 1
 *
 * fs errors (ENOENT, EACCES…) are thrown as they come, for the caller's own message.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';

/**
 * The most a config file or device map may hold: 16 MiB, generous: a full config is a few kB,
 * a device map of a thousand Modbus meters well under a megabyte.
 */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** A file the loader will not read, and why, as words that follow its name ("is a FIFO, not a regular file"). */
export class FileRefused extends Error {
  constructor(
    readonly file: string,
    /** What follows the file's name: "is a FIFO, not a regular file", "is 2 GiB, over the 16 MiB limit". */
    readonly reason: string,
    /** Which limit was hit: the kind of file or its size. */
    readonly kind: 'not-regular' | 'too-large',
    /** What the file is when it is not a regular one: "a FIFO", "a directory"… */
    readonly what?: string,
  ) {
    super(`${file} ${reason}`);
    this.name = 'FileRefused';
  }
}

export function isFileRefused(err: unknown): err is FileRefused {
  return err instanceof FileRefused;
}

/** What a file that is not a regular one is, in words; undefined for a regular file. */
function notRegular(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

function check(file: string, st: Stats, max: number): void {
  const what = notRegular(st);
  if (what !== undefined) throw new FileRefused(file, `is ${what}, not a regular file`, 'not-regular', what);
  if (st.size > max) {
    // "16 MiB, over the 16 MiB limit" would say nothing: just over the bound, the bytes are given.
    const size = sizeText(st.size) === sizeText(max) ? `${st.size} bytes` : sizeText(st.size);
    throw new FileRefused(file, `is ${size}, over the ${sizeText(max)} limit`, 'too-large');
  }
}

/** 16777216 → "16 MiB", 2147483648 → "2 GiB", 1500 → "1500 bytes". */
export function sizeText(n: number): string {
  for (const [unit, k] of [['GiB', 2 ** 30], ['MiB', 2 ** 20]] as const) {
    if (n >= k) return `${Number((n / k).toFixed(1))} ${unit}`;
  }
  return `${n} bytes`;
}

/** The bytes of a regular file of at most `max` bytes; FileRefused otherwise, fs errors as they are. */
export function readBoundedFile(file: string, max = MAX_FILE_BYTES): Buffer {
  return readBoundedFileStat(file, max).bytes;
}

/**
 * readBoundedFile, with the fstat of the file read: its mode and owner are those of what was
 * opened, not of a file a rename put at the path in between.
 */
export function readBoundedFileStat(file: string, max = MAX_FILE_BYTES): { bytes: Buffer; stat: Stats } {
  // stat first: opening a FIFO or a tty has effects (a FIFO's writer sees a reader; a modem hangs up).
  check(file, statSync(file), max);
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const stat = fstatSync(fd);
    check(file, stat, max);
    return { bytes: readUpTo(fd, file, stat, max), stat };
  } finally {
    closeSync(fd);
  }
}

function readUpTo(fd: number, file: string, st: Stats, max: number): Buffer {
  let buf = Buffer.allocUnsafe(Math.min(max + 1, Math.max(st.size + 1, 4096)));
  let length = 0;
  for (;;) {
    if (length === buf.length) {
      // Grown since fstat (being written): read on, up to the bound and one byte more to see it.
      if (length > max) throw new FileRefused(file, `grew past the ${sizeText(max)} limit while it was read`, 'too-large');
      const bigger = Buffer.allocUnsafe(Math.min(max + 1, buf.length * 2));
      buf.copy(bigger, 0, 0, length);
      buf = bigger;
    }
    const n = readSync(fd, buf, length, buf.length - length, null);
    if (n === 0) return buf.subarray(0, length);
    length += n;
  }
}

/** What to do about a TLS file (cert, key, ca, crl) that is not a regular file. */
export const PEM_FIX = 'name the PEM file itself';

/**
 * The words for a file readBoundedFile could not read, to follow the key that names it:
 * "FILE is a FIFO, not a regular file; name the PEM file itself", or for an fs error
 * "cannot read FILE (EACCES); fix the path or its permissions".
 */
export function readFailure(file: string, err: unknown, fix: string): string {
  if (isFileRefused(err)) return `${file} ${err.reason}; ${fix}`;
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return `cannot read ${file} (${code}); fix the path or its permissions`;
}

/** readBoundedFile as UTF-8 text (bytes that are not UTF-8 become U+FFFD; yaml-source.ts reports them). */
export function readBoundedText(file: string, max = MAX_FILE_BYTES): string {
  return readBoundedFile(file, max).toString('utf8');
}
