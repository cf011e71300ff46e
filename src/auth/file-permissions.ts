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

const EXPOSES: Record<AuthFileKey, string> = {
  'auth.password_file': 'they could copy the password hashes and guess them offline, or add a user',
  'auth.acl_file': 'they could read its user names and client ids (a client id in a `client` section is all a client needs to claim its rights) or change the rules',
};

/** One sentence (file, mode, what is wrong, what to do), or undefined when only root and outpost may read and change the file. */
export function fileAccessWarning(key: AuthFileKey, file: string, st: FileOwnership, me: ProcessIdentity | undefined): string | undefined {
  if (me === undefined) return undefined;
  const wrong: string[] = [];
  const others = st.mode & 0o007;
  const group = st.mode & 0o070;
  if (others !== 0) wrong.push(`every user of this host may ${access(others)} it`);
  if (group !== 0 && !me.gids.includes(st.gid)) wrong.push(`group ${st.gid}, which outpost does not run in, may ${access(group >> 3)} it`);
  else if ((group & 0o020) !== 0) wrong.push('its group may write it');
  if (st.uid !== 0 && st.uid !== me.uid) wrong.push(`it belongs to user ${st.uid}, neither root nor the user outpost runs as (${me.uid}), who may change it`);
  if (wrong.length === 0) return undefined;
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  return `${key} ${file} (mode ${mode}, owner ${st.uid}:${st.gid}): ${wrong.join('; ')}, so ${EXPOSES[key]}; chmod 0640 ${file} (0600 if outpost owns it) and chown root:GROUP ${file}, GROUP being the group outpost runs as (installed: chown root:outpost ${file})`;
}

function access(bits: number): string {
  const r = (bits & 0o4) !== 0;
  const w = (bits & 0o2) !== 0;
  return r && w ? 'read and write' : w ? 'write' : r ? 'read' : 'open';
}
