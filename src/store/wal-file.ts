/**
 * Reads a SQLite WAL file the way SQLite's recovery does (sqlite.org/fileformat2.html#walformat),
 * before the database is opened, to see what SQLite would silently throw away:
 *
 * - a database file of 0 bytes next to a WAL: SQLite deletes the WAL at open (a database of
 *   zero pages has nothing to log), and with it every message buffered since the last
 *   checkpoint, which in this store is the whole backlog of an outage (database.ts keeps
 *   the WAL as the log of what is buffered). The page 1 of the last commit, from the WAL,
 *   gives the file back its header, and SQLite reads the WAL again.
 * - a WAL damaged in the middle: SQLite reads frames up to the first one whose salt or
 *   checksum does not match and ignores the rest, commits of the same WAL included.
 *
 *   header (32 B): magic, version, page size, checkpoint seq, salt-1, salt-2, checksum ×2
 *   frame: page no, db size after commit (0 if not a commit), salt-1, salt-2, checksum ×2, page
 */
import { closeSync, copyFileSync, existsSync, openSync, readSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { endianness } from 'node:os';
import type { Logger } from 'pino';

const HEADER = 32;
const FRAME_HEADER = 24;
const MAGIC_LE = 0x377f0682;
const MAGIC_BE = 0x377f0683;
const HOST_LE = endianness() === 'LE';
/** Frames read at a time. */
const CHUNK_FRAMES = 256;

export interface WalScan {
  /** Whether the header's magic, page size and checksum are valid. */
  headerValid: boolean;
  pageSize: number;
  /** Commits SQLite will read (the unbroken checksum chain up to its last commit frame). */
  commits: number;
  /** Page 1 as of the last of those commits, if one of them wrote it. */
  page1: Buffer | undefined;
  /** Where the last of those commits ends: what SQLite reads of the file. */
  readableBytes: number;
  /**
   * Commit frames of this WAL's generation (its salts; the first frame's if the header is
   * unreadable) after the place where SQLite stops reading: commits it will not read.
   */
  unreadCommits: number;
}

/** Scans `file`; undefined if it does not exist or holds no whole frame. */
export function scanWal(file: string): WalScan | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    return scan(fd);
  } catch {
    return undefined; // a directory, an unreadable file: SQLite's open says what is wrong
  } finally {
    closeSync(fd);
  }
}

function scan(fd: number): WalScan | undefined {
  const header = Buffer.alloc(HEADER);
  if (readSync(fd, header, 0, HEADER, 0) < HEADER) return undefined;
  const magic = header.readUInt32BE(0);
  let pageSize = header.readUInt32BE(8);
  const littleEndian = magic === MAGIC_LE;
  let headerValid = (magic === MAGIC_LE || magic === MAGIC_BE) && validPageSize(pageSize);
  let sum: [number, number] = [0, 0];
  if (headerValid) {
    sum = checksum(header.subarray(0, 24), littleEndian, [0, 0]);
    headerValid = sum[0] === header.readUInt32BE(24) && sum[1] === header.readUInt32BE(28);
  }
  let salt1 = header.readUInt32BE(16);
  let salt2 = header.readUInt32BE(20);
  const frameHeader = Buffer.alloc(FRAME_HEADER);
  if (!headerValid) {
    // The frames may still be there: take the size and salts of the first one that looks
    // like one (a page number and a power-of-two size that the file's length allows).
    if (readSync(fd, frameHeader, 0, FRAME_HEADER, HEADER) < FRAME_HEADER) return undefined;
    pageSize = validPageSize(pageSize) ? pageSize : 1024;
    salt1 = frameHeader.readUInt32BE(8);
    salt2 = frameHeader.readUInt32BE(12);
  }
  const result: WalScan = { headerValid, pageSize, commits: 0, page1: undefined, readableBytes: 0, unreadCommits: 0 };
  let chained = headerValid;
  let page1: Buffer | undefined;
  const frameSize = FRAME_HEADER + pageSize;
  // Read in chunks of frames: the WAL may be 16 MiB and more after a long outage.
  const chunk = Buffer.alloc(frameSize * CHUNK_FRAMES);
  for (let off = HEADER; ; ) {
    const frames = Math.floor(readSync(fd, chunk, 0, chunk.length, off) / frameSize);
    for (let i = 0; i < frames; i++, off += frameSize) {
      const head = chunk.subarray(i * frameSize, i * frameSize + FRAME_HEADER);
      const page = chunk.subarray(i * frameSize + FRAME_HEADER, (i + 1) * frameSize);
      const pageNo = head.readUInt32BE(0);
      const commit = head.readUInt32BE(4) !== 0;
      const ours = head.readUInt32BE(8) === salt1 && head.readUInt32BE(12) === salt2;
      if (chained) {
        const next = checksum(page, littleEndian, checksum(head.subarray(0, 8), littleEndian, sum));
        chained = ours && pageNo !== 0 && next[0] === head.readUInt32BE(16) && next[1] === head.readUInt32BE(20);
        if (chained) {
          sum = next;
          if (pageNo === 1) page1 = Buffer.from(page);
          if (commit) {
            result.commits++;
            result.page1 = page1;
            result.readableBytes = off + frameSize;
          }
          continue;
        }
      }
      if (ours && commit && pageNo !== 0) result.unreadCommits++;
    }
    if (frames < CHUNK_FRAMES) break;
  }
  return result;
}

/**
 * Run before SQLite opens `file`: what SQLite would throw away without a word is logged,
 * kept as a copy, or given back.
 *
 * - A WAL with two or more commits of its own after a frame SQLite cannot read is damaged
 *   (SQLite fsyncs each commit before the next one is written, so only the last commit can
 *   be torn by a power cut): the file is copied to `<file>-wal.damaged-<time>` and cut at the
 *   end of what SQLite reads, so that later starts do not report the same damage again.
 * - A database file of 0 bytes gets the page 1 of the WAL's last commit back, so that
 *   SQLite reads the WAL instead of deleting it; with no such page, the empty start is an
 *   error, not "database created".
 */
export function mendBeforeOpen(file: string, log: Logger, now: number): void {
  const walFile = `${file}-wal`;
  const wal = scanWal(walFile);
  if (wal && wal.unreadCommits >= 2) {
    const copy = `${walFile}.damaged-${new Date(now).toISOString()}`;
    try {
      copyFileSync(walFile, copy);
      truncateSync(walFile, wal.readableBytes);
    } catch (err) {
      // No room for the copy: SQLite reads what it can and overwrites the rest as it goes.
      log.error({ file: walFile, readCommits: wal.commits, unreadCommits: wal.unreadCommits, err: (err as Error).message }, 'WAL file damaged: the commits after the damage cannot be read and their acknowledged messages are lost; no copy of the WAL could be kept');
      return mendEmpty(file, wal, log, now);
    }
    log.error(
      { file: walFile, copy, readCommits: wal.commits, unreadCommits: wal.unreadCommits, headerValid: wal.headerValid },
      'WAL file damaged: the commits after the damage cannot be read and their acknowledged messages are lost; a copy of the WAL was kept, the store goes on with the commits before it',
    );
  }
  mendEmpty(file, wal, log, now);
}

function mendEmpty(file: string, wal: WalScan | undefined, log: Logger, now: number): void {
  if (sizeOf(file) !== 0) return;
  if (wal?.page1) {
    writeFileSync(file, wal.page1);
    log.warn({ file, commits: wal.commits }, 'database file was empty (0 bytes) next to its WAL: its first page was written back from the WAL, so the messages in the WAL are kept');
    return;
  }
  // A WAL without page 1 only logged changes to pages the file held: it cannot be read
  // alone, and SQLite deletes it at open. A copy is kept for whoever wants to dig.
  let copy: string | undefined;
  if (wal !== undefined && wal.commits + wal.unreadCommits > 0) {
    copy = `${file}-wal.damaged-${new Date(now).toISOString()}`;
    try {
      // Made already (before the cut) when the WAL was damaged too.
      if (!existsSync(copy)) copyFileSync(`${file}-wal`, copy);
    } catch {
      copy = undefined;
    }
  }
  log.error({ file, walCopy: copy }, 'database file was empty (0 bytes: cut short by a power loss or a failing SD card); started an empty store, whatever it held is lost');
}

/** Size of `file`, or undefined if it does not exist. */
function sizeOf(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

function validPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/** SQLite's WAL checksum (walChecksumBytes): pairs of 32-bit words, in the byte order of the magic. */
function checksum(data: Buffer, littleEndian: boolean, [a, b]: [number, number]): [number, number] {
  let s1 = a;
  let s2 = b;
  if (littleEndian && HOST_LE && data.byteOffset % 4 === 0) {
    // The usual case (SQLite on arm64 and x86 writes little-endian checksums): whole words.
    const w = new Uint32Array(data.buffer, data.byteOffset, data.length >>> 2);
    for (let i = 0; i + 1 < w.length; i += 2) {
      s1 = (s1 + w[i]! + s2) >>> 0;
      s2 = (s2 + w[i + 1]! + s1) >>> 0;
    }
    return [s1, s2];
  }
  for (let i = 0; i + 8 <= data.length; i += 8) {
    const x0 = littleEndian ? data.readUInt32LE(i) : data.readUInt32BE(i);
    const x1 = littleEndian ? data.readUInt32LE(i + 4) : data.readUInt32BE(i + 4);
    s1 = (s1 + x0 + s2) >>> 0;
    s2 = (s2 + x1 + s1) >>> 0;
  }
  return [s1, s2];
}
