/**
 * A warning for a password file or ACL that others than outpost (and root) may read or
 * change: Mosquitto 2.0 warns about world-readable password and ACL files too. A warning,
 * never a refusal: a field install may have it so on purpose (a shared admin group).
 *
 * The installed layout is root:outpost 0640 (`outpost passwd` keeps it, a new file gets it):
 * group read is what lets the service read the file, so it is fine when outpost runs in
 * that group. Warned about:
 *   - any access for others (mode & 0o007);
 *   - group access when outpost does not run in the file's group (its members are others);
 *   - group write (anyone in the group could add a user or a rule);
 *   - an owner other than root and outpost's own user (that user can rewrite it).
 *
 * The ACL gets the same check: it names the users (which the password check keeps from
 * telling by timing) and client ids, and a `client ID` section grants rights to whoever
 * claims that id, so reading it tells which id to claim; changing it grants anything.
 */
export type AuthFileKey = 'auth.password_file' | 'auth.acl_file';

export interface FileOwnership {
  mode: number;
  uid: number;
  gid: number;
}

/** Who outpost runs as: its user id and every group id it has (primary and supplementary). */
export interface ProcessIdentity {
  uid: number;
  gids: readonly number[];
}

/** The running process's identity; undefined where there are no POSIX ids (Windows). */
export function processIdentity(): ProcessIdentity | undefined {
  if (process.getuid === undefined || process.getgid === undefined) return undefined;
  return { uid: process.getuid(), gids: [process.getgid(), ...(process.getgroups?.() ?? [])] };
}

/** What others could do with it, by what they may do to it. */
const EXPOSES: Record<AuthFileKey, { read: string; write: string }> = {
  'auth.password_file': { read: 'copy the password hashes and guess them offline', write: 'add a user or change a password' },
  'auth.acl_file': { read: 'learn the client ids it grants rights to (claiming one is all a client needs)', write: 'change who may do what' },
};

/**
 * One sentence (file, mode, what is wrong, what to do), or undefined when only root and
 * outpost may change the file and, when reading it tells something (`readIsSensitive`), read it.
 *
 * `dirs` are the directories above the file (its real path) up to /: a class of users that
 * may not search one of them cannot reach the file, whatever its mode. /etc/outpost is
 * root:outpost 0750 when installed, so a 0644 file an editor left there is no exposure.
 */
export function fileAccessWarning(key: AuthFileKey, file: string, st: FileOwnership, me: ProcessIdentity | undefined, readIsSensitive = true, dirs: readonly FileOwnership[] = []): string | undefined {
  if (me === undefined) return undefined;
  // Execute bits on a data file give nothing; read matters only where reading tells something.
  const relevant = 0o2 | (readIsSensitive ? 0o4 : 0);
  // Members of the file's group search a directory of that group with its group bit, others with its others bit.
  const othersReach = dirs.every((d) => (d.mode & 0o001) !== 0);
  const groupReach = dirs.every((d) => (d.mode & (d.gid === st.gid ? 0o010 : 0o001)) !== 0);
  const others = othersReach ? st.mode & relevant : 0;
  const group = groupReach ? (st.mode >> 3) & relevant : 0;
  const wrong: string[] = [];
  let read = false;
  let write = false;
  const note = (bits: number, who: string) => {
    wrong.push(`${who} may ${access(bits)} it`);
    read ||= (bits & 0o4) !== 0;
    write ||= (bits & 0o2) !== 0;
  };
  if (others !== 0) note(others, 'every user of this host');
  if (group !== 0 && !me.gids.includes(st.gid)) note(group, `group ${st.gid}, which outpost does not run in,`);
  else if ((group & 0o2) !== 0) note(0o2, 'its group');
  if (st.uid !== 0 && st.uid !== me.uid) {
    wrong.push(`it belongs to user ${st.uid}, neither root nor the user outpost runs as (${me.uid}), who may change it`);
    write = true;
  }
  if (wrong.length === 0) return undefined;
  const could = [...(read ? [EXPOSES[key].read] : []), ...(write ? [EXPOSES[key].write] : [])].join(' or ');
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  return `${key} ${file} (mode ${mode}, owner ${st.uid}:${st.gid}): ${wrong.join('; ')}, so they could ${could}; chmod 0640 ${file} (0600 if outpost owns it) and chown root:GROUP ${file}, GROUP being the group outpost runs as (installed: chown root:outpost ${file})`;
}

function access(bits: number): string {
  return bits === 0o6 ? 'read and write' : bits === 0o2 ? 'write' : 'read';
}
