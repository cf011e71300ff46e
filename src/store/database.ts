/**
 * Opens the gateway's SQLite database: the only module that imports better-sqlite3.
 *
 *   mkdir dir → writable? → mend (wal-file.ts) → open → quick_check → WAL + synchronous → migrations → store id
 *        │ SQLITE_CORRUPT / SQLITE_NOTADB / quick_check ≠ ok
 *        └→ rename file (+ -wal, -shm) to outpost.db.corrupt-<ISO time>, log error, open fresh
 *
 * A corrupt file is kept for forensics and never deleted: it may still hold messages
 * that `sqlite3 .recover` can get back.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, openSync, renameSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { ensureDir } from './ensure-dir.js';
import { mendBeforeOpen } from './wal-file.js';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.js';
import { OutpostError } from '../core/errors.js';
import { MIGRATIONS, type Migration } from './migrations.js';
import { claimInstanceName, instanceHolder, type NameClaim } from './instance-name.js';
import { stateDirFailure } from './dir-access.js';

/** The raw handle and statement types, for the store modules (no second import of better-sqlite3). */
export type SqliteHandle = Database.Database;
export type SqliteStatement = Database.Statement;

export const MEMORY = ':memory:';

/**
 * SQLite page cache per connection, KiB (1,024 pages of 1 KiB). The pages a busy gateway
 * keeps touching are few: the outbox's newest and oldest leaves and the path to them, the
 * persistent sessions' queues, the free-list and pointer-map pages; rows of a backlog are
 * read once, in order.
 */
export const PAGE_CACHE_KIB = 1024;

/**
 * The file's layout, chosen for the bytes a buffered message costs the flash (issue 9):
 *
 * - 1 KiB pages. A group commit rewrites its table's partly filled last page, the page
 *   above it and the header page however few rows it adds; smaller pages make that fixed
 *   cost a quarter. Deleting acknowledged rows from the front of the outbox merges the
 *   emptied leaf pages into their neighbours, rewriting those, and that costs a quarter
 *   too. Measured with the outbox's rows at 1,000 msg/s: 112 instead of 150 B of WAL per
 *   message, 188 instead of 397 B to delete them 100 per commit.
 * - Incremental auto-vacuum: the file can give freed pages back (`incremental_vacuum`),
 *   so that a checkpoint after a drain has only the few pages still in use to write (see
 *   WAL_CHECKPOINT_PAGES).
 */
export const PAGE_SIZE = 1024;
const AUTO_VACUUM_INCREMENTAL = 2;

/**
 * SQLite's own checkpoint once the WAL holds this many pages (16 MiB). Below it the WAL
 * is the log of the outbox: rows buffered during an outage are written once, into the WAL,
 * and the outbox checkpoints itself when it is nearly empty again (sqlite-outbox.ts), when
 * their pages have been freed and given back and need no second write. An outage longer
 * than this (about 160,000 messages: under 3 minutes at 1,000 msg/s, hours at a few dozen)
 * checkpoints with the rows still there. The bound is also the longest stall: a checkpoint
 * runs inside a commit, on the event loop, and writes and fsyncs what the WAL holds: 16 MiB
 * is about a second at an SD card's 15–20 MB/s.
 */
export const WAL_CHECKPOINT_PAGES = 16_384;

export interface OpenDatabaseOptions {
  /** Directory of the state files (store.dir); created if missing. Ignored for `:memory:`. */
  dir: string;
  /** File name inside `dir`, or ':memory:' for a private in-memory database (tests). */
  file?: string;
  synchronous: 'full' | 'normal';
  log: Logger;
  clock?: Clock;
  /** How long a statement waits for another connection's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number;
  /** The schema steps; tests pass a shorter list to build old-schema files. */
  migrations?: readonly Migration[];
  /** Largest file rebuilt at start to the current layout (default REBUILD_MAX_BYTES). */
  rebuildMaxBytes?: number;
}

/**
 * A file of an earlier layout is rebuilt at start only up to this size (with its WAL). VACUUM
 * rewrites the whole file, with a rollback journal, before the gateway is ready: some
 * seconds for 64 MiB on an SD card, and minutes for the gigabytes an outbox may hold after
 * a long outage, which would overrun systemd's start timeout. A larger file keeps its
 * layout until a start finds it small again (its backlog sent).
 */
export const REBUILD_MAX_BYTES = 64 * 1024 * 1024;

export interface StoreDatabase {
  readonly handle: SqliteHandle;
  /** Absolute path of the database file, or ':memory:'. */
  readonly file: string;
  /** Random id made when the file was created; message ids are "<storeId>-<seq>". */
  readonly storeId: string;
  /** Where a corrupt file found at open was moved, if one was. */
  readonly movedAside: string | undefined;
  /** Current size of the database file and its WAL, for bytes-written metrics. */
  diskBytes(): { db: number; wal: number };
  /**
   * Whether the path no longer leads to the file that was opened: store.dir deleted, or its
   * disk unmounted or replaced, while the gateway ran. SQLite goes on writing to the open
   * file, which no start can find again, so what it acknowledges then would be lost.
   */
  moved(): boolean;
  close(): void;
}

class CorruptDatabase extends Error {}

export function openDatabase(opts: OpenDatabaseOptions): StoreDatabase {
  const memory = opts.file === MEMORY;
  const file = memory ? MEMORY : path.resolve(opts.dir, opts.file ?? 'outpost.db');
  const log = opts.log;
  if (!memory) {
    try {
      ensureDir(path.dirname(file));
    } catch (err) {
      const dir = path.dirname(file);
      throw stateDirFailure(`state directory ${dir} cannot be created`, dir, (err as Error).message, (err as NodeJS.ErrnoException).code, err);
    }
  }
  if (!memory) {
    // SQLite opens a file it cannot write read-only without a word; the first write of the
    // start-up then failed with a stack trace (an SD card the kernel remounted read-only).
    const denied = whyNotWritable(path.dirname(file)) ?? whyNotWritableFile(file);
    if (denied !== undefined) throw stateDirFailure(`database ${file} cannot be written`, path.dirname(file), denied.why, denied.errno);
    mendBeforeOpen(file, log, (opts.clock ?? systemClock).now());
  }
  let movedAside: string | undefined;
  let opened: Opened;
  try {
    opened = openChecked(file, opts, (err) => {
      if (memory || !isCorruption(err)) return false;
      movedAside = moveAside(file, (opts.clock ?? systemClock).now());
      log.error(
        { file, movedTo: movedAside, reason: (err as Error).message },
        'corrupt database moved aside, started an empty one (its queued messages were not sent; `sqlite3 <movedTo> .recover` may get some of them back)',
      );
      return true;
    });
  } catch (err) {
    if (movedAside === undefined) throw unavailable(file, err);
    try {
      opened = openChecked(file, opts, () => false);
    } catch (again) {
      throw unavailable(file, again);
    }
  }
  const { handle, storeId } = opened;
  const identity = memory ? undefined : fileIdentity(file);
  return {
    handle,
    file,
    storeId,
    movedAside,
    diskBytes: () => (memory ? { db: 0, wal: 0 } : { db: sizeOf(file), wal: sizeOf(`${file}-wal`) }),
    moved: () => identity !== undefined && fileIdentity(file) !== identity,
    close: () => {
      // Closing the last connection checkpoints the WAL into the file and removes it.
      if (handle.open) handle.close();
    },
  };
}

interface Opened {
  handle: SqliteHandle;
  storeId: string;
}

/**
 * Opens and checks `file`. On failure `onFailure(err)` (which may move the files aside) runs while the handle is still
 * open: closing the last connection deletes the -wal and -shm files (SQLite does so even
 * for a file it found not to be a database), so they are renamed first and the close
 * no longer finds them.
 */
function openChecked(file: string, opts: OpenDatabaseOptions, onFailure: (err: unknown) => boolean): Opened {
  const handle = new Database(file, { timeout: opts.busyTimeoutMs ?? 5000 });
  try {
    // better-sqlite3 opens lazily: a file that is not a database fails on its first
    // read (SQLITE_NOTADB), which is this quick_check. quick_check is integrity_check
    // without the index-content cross checks: O(file size), but no sorting.
    const check = handle.pragma('quick_check', { simple: false }) as Array<{ quick_check: string }>;
    if (check.length !== 1 || check[0]!.quick_check !== 'ok') {
      throw new CorruptDatabase(`quick_check: ${check.map((r) => r.quick_check).slice(0, 3).join('; ')}`);
    }
    // A file from a newer outpost is left exactly as it is (not even rebuilt).
    refuseNewer(handle, file, opts.migrations ?? MIGRATIONS);
    ensureLayout(handle, file, opts.log, opts.rebuildMaxBytes ?? REBUILD_MAX_BYTES);
    if (file !== MEMORY) {
      // WAL: readers never block the writer, and a commit is one append to the -wal file
      // plus (with synchronous=FULL) one fsync of it (sqlite.org/wal.html).
      const mode = handle.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') opts.log.warn({ file, mode }, 'database did not switch to WAL');
      // Keep the -wal file from staying at its high-water size after a large burst.
      handle.pragma('journal_size_limit = 67108864');
      handle.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    }
    // FULL: the WAL is fsynced at every commit, so a committed message survives power
    // loss. NORMAL: fsync only at checkpoints; a power cut can lose the last commits,
    // a process crash cannot (sqlite.org/pragma.html#pragma_synchronous).
    handle.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    // better-sqlite3 builds SQLite with a 16 MiB page cache per connection
    // (SQLITE_DEFAULT_CACHE_SIZE=-16000); an outbox drained in order touches a few pages at
    // its head, its tail and their index paths, so the cache filled up with pages read once
    // during a drain and stayed resident. Negative = KiB (sqlite.org/pragma.html#pragma_cache_size).
    handle.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    // A write now: SQLite opens a file it cannot write read-only without a word (an ext4
    // the kernel made read-only after an I/O error still looks writable to access()), and
    // the first write of the start-up failed with a stack trace instead of a sentence.
    handle.pragma(`user_version = ${handle.pragma('user_version', { simple: true }) as number}`);
    migrate(handle, file, opts.migrations ?? MIGRATIONS, opts.log);
    return { handle, storeId: ensureStoreId(handle, opts.migrations ?? MIGRATIONS) };
  } catch (err) {
    try {
      onFailure(err);
    } finally {
      handle.close();
    }
    throw err;
  }
}

/**
 * Gives the file the page size and auto-vacuum mode of PAGE_SIZE. A new file takes them
 * before its first page is written; a file made by an earlier outpost is rebuilt once with
 * VACUUM (page size cannot change in WAL mode, so the journal is switched for it), if it is
 * no larger than `rebuildMaxBytes`. A VACUUM needs room for a second copy of the file and
 * its journal: when it fails, the file keeps its layout and works as before, and the next
 * start tries again. A kill during the VACUUM is rolled back from its journal at the next open.
 */
function ensureLayout(handle: SqliteHandle, file: string, log: Logger, rebuildMaxBytes: number): void {
  const pageSize = handle.pragma('page_size', { simple: true }) as number;
  const autoVacuum = handle.pragma('auto_vacuum', { simple: true }) as number;
  if (pageSize === PAGE_SIZE && autoVacuum === AUTO_VACUUM_INCREMENTAL) return;
  const setLayout = (): void => {
    handle.pragma(`page_size = ${PAGE_SIZE}`);
    handle.pragma('auto_vacuum = INCREMENTAL');
  };
  if ((handle.pragma('page_count', { simple: true }) as number) === 0 || file === MEMORY) return setLayout();
  const size = sizeOf(file) + sizeOf(`${file}-wal`);
  if (size > rebuildMaxBytes) {
    log.info({ file, bytes: size, pageSize }, 'database keeps its earlier layout for now (too large to rebuild at start; a later start rebuilds it once its backlog is sent)');
    return;
  }
  const started = performance.now();
  try {
    handle.pragma('journal_mode = DELETE');
    setLayout();
    handle.exec('VACUUM');
    log.info({ file, pageSize: PAGE_SIZE, from: pageSize, ms: Math.round(performance.now() - started) }, 'database rebuilt once with 1 KiB pages and incremental vacuum');
  } catch (err) {
    log.warn({ file, err: (err as Error).message }, 'database could not be rebuilt with 1 KiB pages (it keeps its layout; the next start tries again)');
  }
}

function refuseNewer(handle: SqliteHandle, file: string, migrations: readonly Migration[]): void {
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  const from = handle.pragma('user_version', { simple: true }) as number;
  if (from > known) {
    throw new OutpostError(
      'STORE_INCOMPATIBLE',
      `${file} has schema version ${from} but this outpost knows only up to ${known}: it was written by a newer outpost; ` +
        'run that version again, or move the file away to start with an empty store (the messages queued in it would not be sent)',
    );
  }
}

function migrate(handle: SqliteHandle, file: string, migrations: readonly Migration[], log: Logger): void {
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  const from = handle.pragma('user_version', { simple: true }) as number;
  const empty = handle.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() === 0;
  if (empty && migrations.length > 0) log.info({ file, version: known }, 'database created');
  for (const m of migrations) {
    if (m.version <= from) continue;
    // One transaction per step: the DDL and the new user_version commit together.
    handle.transaction(() => {
      handle.exec(m.sql);
      handle.pragma(`user_version = ${m.version}`);
    }).immediate();
    if (!empty) log.info({ file, version: m.version, description: m.description }, 'database schema migrated');
  }
}

function ensureStoreId(handle: SqliteHandle, migrations: readonly Migration[]): string {
  if (migrations.length === 0) return '';
  const row = handle.prepare("SELECT value FROM meta WHERE key = 'store_id'").get() as { value: string } | undefined;
  if (row) return row.value;
  const id = randomBytes(8).toString('hex');
  handle.prepare("INSERT INTO meta (key, value) VALUES ('store_id', ?)").run(id);
  return id;
}

function isCorruption(err: unknown): boolean {
  if (err instanceof CorruptDatabase) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'));
}

/** Renames the file and its -wal/-shm companions, keeping SQLite's naming so they open together. */
function moveAside(file: string, now: number): string {
  let aside = `${file}.corrupt-${new Date(now).toISOString()}`;
  for (let n = 1; existsSync(aside); n++) aside = `${file}.corrupt-${new Date(now).toISOString()}.${n}`;
  renameSync(file, aside);
  for (const suffix of ['-wal', '-shm']) {
    if (existsSync(file + suffix)) renameSync(file + suffix, aside + suffix);
  }
  return aside;
}

function unavailable(file: string, err: unknown): OutpostError {
  if (err instanceof OutpostError) return err;
  const code = (err as { code?: unknown }).code;
  const why = `${typeof code === 'string' ? `${code}: ` : ''}${(err as Error).message}`;
  const readOnly = typeof code === 'string' && (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN') && cannotCreateIn(path.dirname(file)) === 'EROFS';
  const directory = [file, `${file}-wal`, `${file}-shm`].find(isDirectory);
  if (directory !== undefined) {
    return new OutpostError('STORE_UNAVAILABLE', `database ${file} cannot be opened (${directory} is a directory, not a file); move it out of store.dir`, { cause: err });
  }
  const hint =
    code === 'SQLITE_BUSY'
      ? 'is another outpost running on the same store.dir?'
      : readOnly || (typeof code === 'string' && code.startsWith('SQLITE_READONLY'))
        ? READ_ONLY_HINT
        : 'check that store.dir is on a writable, mounted disk with the right permissions';
  // A read-only disk stays so until someone acts: not worth a restart every 5 s (dir-access.ts).
  return new OutpostError(hint === READ_ONLY_HINT ? 'STORE_NOT_WRITABLE' : 'STORE_UNAVAILABLE', `database ${file} cannot be opened (${why}); ${hint}`, { cause: err });
}

const READ_ONLY_HINT = 'the disk of store.dir is read-only (after I/O errors the kernel remounts an SD card read-only: see dmesg, check the card, reboot)';

function isDirectory(f: string): boolean {
  try {
    return statSync(f, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}

/** The errno of creating a file in `dir`, if that fails: access() passes on an ext4 the kernel made read-only. */
function cannotCreateIn(dir: string): string | undefined {
  const probe = path.join(dir, `.outpost-probe-${process.pid}`);
  try {
    closeSync(openSync(probe, 'w'));
    unlinkSync(probe);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  }
}

/** Device and inode of `file`, or undefined if there is none. */
function fileIdentity(file: string): string | undefined {
  try {
    const s = statSync(file, { throwIfNoEntry: false });
    return s === undefined ? undefined : `${s.dev}:${s.ino}`;
  } catch {
    return undefined; // ENOTDIR, EIO: not the file that was opened either
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Why a path cannot be written: its errno, and the same in the operator's terms. */
interface Denied {
  errno: string | undefined;
  why: string;
}

/** Why a directory cannot hold our files, in the operator's terms; SQLite says only SQLITE_CANTOPEN. */
function whyNotWritable(dir: string): Denied | undefined {
  try {
    if (!statSync(dir).isDirectory()) return { errno: 'ENOTDIR', why: 'ENOTDIR: it is a file, not a directory' };
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Under the systemd unit (ProtectSystem=strict) every directory but /var/lib/outpost is read-only.
    if (e.code === 'EROFS') return { errno: e.code, why: 'EROFS: read-only here; under systemd only /var/lib/outpost is writable unless ReadWritePaths= adds it' };
    return { errno: e.code, why: e.code ?? e.message };
  }
  return undefined;
}

/** Why files of the store that exist cannot be written (one a `sudo outpost run` left owned by root). */
function whyNotWritableFile(file: string, companions = ['-wal']): Denied | undefined {
  for (const f of [file, ...companions.map((c) => file + c)]) {
    try {
      accessSync(f, constants.W_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'ENOENT') return { errno: e.code, why: `${path.basename(f)}: ${e.code ?? e.message}` };
    }
  }
  return undefined;
}

/**
 * One gateway per state directory: two would drain the same outbox to the cloud twice.
 * Two guards, both held for the life of the gateway and both dropped by the operating
 * system when the process dies, even by kill -9, so a crash never leaves a stale lock:
 * an exclusive SQLite transaction on <dir>/outpost.lock, and the directory's name in the
 * abstract socket namespace (instance-name.ts), which still holds when the file is
 * deleted or replaced while the gateway runs.
 */
export function lockStateDir(dir: string): { release(): void } {
  const file = lockFile(dir);
  let claim: NameClaim | undefined;
  try {
    claim = claimInstanceName(dir);
  } catch (err) {
    file.release();
    throw err;
  }
  if (claim?.taken === true) {
    file.release();
    const lock = path.resolve(dir, 'outpost.lock');
    throw new OutpostError(
      'STORE_UNAVAILABLE',
      `${anotherOutpost(claim.pid)} is already running with store.dir ${dir} (its lock file ${lock} was deleted or replaced while it ran); stop it, or give this one its own store.dir`,
    );
  }
  const name = claim;
  return {
    release: () => {
      try {
        name?.release();
      } finally {
        file.release();
      }
    },
  };
}

function anotherOutpost(pid: number | undefined): string {
  return pid === undefined ? 'another outpost' : `another outpost (pid ${pid})`;
}

function lockFile(dir: string, emptied = false): { release(): void } {
  const file = path.resolve(dir, 'outpost.lock');
  // SQLite opens a lock file this user may not write (one a `sudo outpost run` left owned by
  // root) read-only, and its exclusive lock then holds nothing: a second gateway "locks" it too.
  const denied = whyNotWritable(dir) ?? whyNotWritableFile(file, ['-journal']);
  if (denied !== undefined) throw stateDirFailure(`cannot lock the state directory ${dir}`, dir, denied.why, denied.errno);
  let handle: SqliteHandle | undefined;
  try {
    handle = new Database(file, { timeout: 0 });
    handle.pragma('locking_mode = EXCLUSIVE');
    handle.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    handle?.close();
    const code = (err as { code?: string }).code;
    if (!emptied && (code === 'SQLITE_NOTADB' || code?.startsWith('SQLITE_CORRUPT') === true)) {
      // The lock file holds nothing, and a file another outpost holds would have answered
      // SQLITE_BUSY before its header was read: a damaged one (garbage from a failing SD
      // card) is emptied, in place so that a lock on it still counts, instead of stopping
      // every start for ever.
      truncateSync(file, 0);
      return lockFile(dir, true);
    }
    if (code === 'SQLITE_CANTOPEN' && isDirectory(file)) {
      throw new OutpostError('STORE_UNAVAILABLE', `cannot lock the state directory ${dir}: ${file} is a directory, not a file; move it out of store.dir`, { cause: err });
    }
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      throw new OutpostError('STORE_UNAVAILABLE', `${anotherOutpost(instanceHolder(dir))} is already running with store.dir ${dir} (${file} is locked); stop it, or give this one its own store.dir`, { cause: err });
    }
    if (code === 'SQLITE_FULL') {
      throw new OutpostError('STORE_FULL', `cannot lock the state directory ${dir}: its disk is full (${file} cannot be written); free space on the disk of store.dir`, { cause: err });
    }
    const denied = whyNotWritable(dir) ?? whyNotWritableFile(file, ['-journal']) ?? { errno: undefined, why: code ?? (err as Error).message };
    throw stateDirFailure(`cannot lock the state directory ${dir}`, dir, denied.why, denied.errno, err);
  }
  const locked = handle;
  return {
    release: () => {
      try {
        locked.exec('ROLLBACK');
      } finally {
        locked.close();
      }
    },
  };
}
