/**
 * The second half of the one-gateway-per-state-directory guard (lockStateDir in database.ts
 * takes the first, the lock on <dir>/outpost.lock): a name in Linux's abstract unix-socket
 * namespace, bound for the life of the gateway.
 *
 * Why a name as well as the file: a lock on a file is a lock on its inode, not on its path.
 * When outpost.lock is deleted or replaced while a gateway runs (a cleanup script, a user
 * tidying up), the next start creates a new file, finds it unlocked and runs too: two
 * gateways draining one outbox, each message sent twice or acknowledged by the wrong one.
 * Re-checking the file's inode from the running gateway cannot close that gap: a start
 * may come between two checks, and the running gateway can only notice, not undo it. An
 * abstract socket name is not a path at all, so nothing on disk can remove it; bind()
 * gives it to one socket at a time (EADDRINUSE for the next), and the kernel frees it when
 * that socket closes, which it does when the process dies, kill -9 included: no stale lock
 * after a crash, as with the file.
 *
 * The name is made of the device and inode of the state directory, so every path to it
 * (a symlink, a bind mount, a relative store.dir) leads to the same name, while a directory
 * deleted and made again is a new, empty store with a new name.
 *
 * Its limits, and why the lock file stays: abstract names belong to a network namespace
 * (two containers sharing one volume, a unit with PrivateNetwork=, see only the file lock);
 * they are Linux-only; an outpost of an earlier version knows only the file; and any local
 * process can bind any name, so a squatter would keep outpost from starting (the message
 * then names no outpost pid, as /proc shows none). Each guard covers the other's gap: only
 * a deleted lock file *and* a second namespace together get past both.
 */
import net from 'node:net';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

/** Outcome of binding a state directory's name. */
export type NameClaim =
  | { readonly taken: false; release(): void }
  /** Another socket holds the name; `pid` is its process when /proc shows it (same user, or root). */
  | { readonly taken: true; readonly pid: number | undefined };

/** Abstract socket name of the state directory `dir` (which must exist). */
export function instanceName(dir: string): string {
  const s = statSync(dir);
  return `outpost-store:${s.dev}:${s.ino}`;
}

/**
 * Binds the name of `dir` for this process until `release()`. Undefined where abstract
 * names cannot be used (not Linux, no AF_UNIX, no /proc to tell a taken name from a
 * refused bind): then the lock file alone guards the directory.
 */
export function claimInstanceName(dir: string): NameClaim | undefined {
  if (process.platform !== 'linux') return undefined;
  const name = instanceName(dir);
  // Whoever connects (nobody should) is hung up on at once.
  const server = net.createServer((socket) => socket.destroy());
  server.on('error', () => undefined); // the outcome is read from `listening` below
  server.listen(`\0${name}`);
  // A unix socket is bound inside listen(): `listening` is already true or false here, and
  // the error of a failed bind (EADDRINUSE) is only emitted on the next tick.
  if (server.listening) {
    // Sockets of other node versions may bind the same name with another length (node
    // pads it to the whole sun_path, as seen in /proc/net/unix): one more listener is
    // another gateway too.
    const holders = listeningInodes(name);
    if (holders !== undefined && holders.length > 1) {
      const own = ownSocketInodes();
      server.close();
      return { taken: true, pid: pidHolding(holders.filter((i) => !own.has(i))) };
    }
    server.unref(); // holding the name must not keep node running
    // close() closes the socket at once (its callback comes later): the name is free on return.
    return { taken: false, release: () => void server.close() };
  }
  const holders = listeningInodes(name);
  if (holders === undefined || holders.length === 0) return undefined;
  return { taken: true, pid: pidHolding(holders) };
}

/** The process (not this one) that holds the name of `dir`, if /proc shows one. */
export function instanceHolder(dir: string): number | undefined {
  if (process.platform !== 'linux') return undefined;
  let name: string;
  try {
    name = instanceName(dir);
  } catch {
    return undefined;
  }
  return pidHolding(listeningInodes(name) ?? []);
}

/** __SO_ACCEPTCON in /proc/net/unix's Flags column: a listening socket. */
const ACCEPTCON = 0x10000;

/**
 * Inodes of the listening sockets bound to abstract `name`, read from /proc/net/unix
 * (`Num RefCount Protocol Flags Type St Inode Path`, the path "@name" with each NUL
 * shown as "@"); undefined when it cannot be read.
 */
function listeningInodes(name: string): string[] | undefined {
  let table: string;
  try {
    table = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return undefined;
  }
  const inodes: string[] = [];
  for (const line of table.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || (parseInt(f[3]!, 16) & ACCEPTCON) === 0) continue;
    if (f.slice(7).join(' ').replace(/@+$/, '') === `@${name}`) inodes.push(f[6]!);
  }
  return inodes;
}

function ownSocketInodes(): Set<string> {
  const own = new Set<string>();
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      const m = /^socket:\[(\d+)\]$/.exec(safeReadlink(`/proc/self/fd/${fd}`) ?? '');
      if (m) own.add(m[1]!);
    }
  } catch {
    // no /proc/self: nothing is known to be ours
  }
  return own;
}

/** The process, other than this one, that has one of these socket inodes open. */
function pidHolding(inodes: readonly string[]): number | undefined {
  if (inodes.length === 0) return undefined;
  const links = new Set(inodes.map((i) => `socket:[${i}]`));
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid);
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`); // another user's process: EACCES, unless root
    } catch {
      continue;
    }
    for (const fd of fds) {
      const link = safeReadlink(`/proc/${pid}/fd/${fd}`);
      if (link !== undefined && links.has(link)) return Number(pid);
    }
  }
  return undefined;
}

function safeReadlink(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}
