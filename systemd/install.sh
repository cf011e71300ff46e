#!/usr/bin/env bash
# Installs outpost as a systemd service (Debian, Raspberry Pi OS bookworm), or removes it.
#
#   sudo systemd/install.sh                 install or update; run it again any time (idempotent)
#   sudo systemd/install.sh --uninstall     remove the program and the unit; keep config and data
#   sudo systemd/install.sh --uninstall --purge   also remove /etc/outpost, /var/lib/outpost and the user
#
# What it lays down (under --root, default /):
#   /opt/outpost/                 the package: package.json, package-lock.json, dist/, config/, systemd/
#                                 and its production node_modules (npm ci --omit=dev, compiles
#                                 better-sqlite3 and serialport when no prebuilt binary fits)
#   /usr/local/bin/outpost        symlink to /opt/outpost/dist/src/main.js (the unit's ExecStart)
#   user and group "outpost"      system account, member of dialout (serial ports)
#   /etc/outpost/                 root:outpost 0750; outpost.yaml and devices.yaml from the
#                                 examples, only when missing (your edits are never overwritten)
#   /var/lib/outpost/             outpost:outpost 0750, the state directory (SQLite outbox)
#   /etc/systemd/system/outpost.service, enabled (systemctl daemon-reload, enable)
#
# Options:
#   --from DIR       the outpost checkout or unpacked package to install (default: the one this
#                    script is in); it must be built (dist/src/main.js): run "npm ci" there first
#   --root DIR       install below DIR instead of / (image building, tests); users are added to
#                    DIR/etc/passwd with useradd --prefix
#   --no-systemctl   do not call systemctl (no running systemd, e.g. building an image)
#   --no-npm         do not install node_modules in /opt/outpost (tests; vendored modules)
#   --uninstall      remove; with --purge also config, state and the user
set -euo pipefail

ROOT=/
ARGS="$*"       # as given, for the message below (the option loop shifts them away)
FROM="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYSTEMCTL=1
NPM=1
MODE=install
PURGE=0

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --from) [ $# -ge 2 ] || die "--from needs a directory"; FROM="$2"; shift 2 ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    --no-npm) NPM=0; shift ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option \"$1\"; see --help" ;;
  esac
done
[ "$PURGE" = 1 ] && [ "$MODE" != uninstall ] && die "--purge goes with --uninstall"
[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0${ARGS:+ $ARGS}): it creates a system user and writes to /opt, /etc and /var/lib"
ROOT="${ROOT%/}"
[ -z "$ROOT" ] || [ -d "$ROOT" ] || die "--root $ROOT is not a directory"

APP="$ROOT/opt/outpost"
BIN="$ROOT/usr/local/bin/outpost"
ETC="$ROOT/etc/outpost"
STATE="$ROOT/var/lib/outpost"
UNIT="$ROOT/etc/systemd/system/outpost.service"
CHANGED=0
QUIET=0        # program files: counted, not listed one by one
WRITTEN=0

changed() { CHANGED=1; [ "$QUIET" = 1 ] || say "$*"; }

# useradd/userdel/getent on the target system (the host, or the tree under --root).
user_args=()
[ -n "$ROOT" ] && user_args=(--prefix "$ROOT")
passwd_field() { # NAME FIELD: a field of NAME's passwd line on the target system
  if [ -n "$ROOT" ]; then awk -F: -v n="$1" -v f="$2" '$1 == n { print $f }' "$ROOT/etc/passwd" 2>/dev/null
  else getent passwd "$1" | cut -d: -f"$2"; fi
}
group_field() {
  if [ -n "$ROOT" ]; then awk -F: -v n="$1" -v f="$2" '$1 == n { print $f }' "$ROOT/etc/group" 2>/dev/null
  else getent group "$1" | cut -d: -f"$2"; fi
}

# put SRC DST MODE OWNER:GROUP — copies when the content differs; fixes mode and owner.
put() {
  local src="$1" dst="$2" mode="$3" owner="$4"
  if [ ! -f "$dst" ] || ! cmp -s "$src" "$dst"; then
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst.tmp.$$" && mv -f "$dst.tmp.$$" "$dst"
    WRITTEN=$((WRITTEN + 1))
    changed "wrote ${dst#"$ROOT"}"
  fi
  perms "$dst" "$mode" "$owner"
}

# seed SRC DST MODE OWNER:GROUP — like put, but never replaces a file that exists (user config).
seed() {
  if [ -e "$2" ]; then perms "$2" "$3" "$4"; return; fi
  put "$@"
}

# perms PATH MODE UID:GID — sets mode and owner when they differ.
perms() {
  local path="$1" mode="$2" owner="$3"
  if [ "$(stat -c '%a' "$path")" != "${mode#0}" ]; then chmod "$mode" "$path"; changed "mode $mode on ${path#"$ROOT"}"; fi
  if [ "$(stat -c '%u:%g' "$path")" != "$owner" ]; then chown "$owner" "$path"; changed "owner $owner on ${path#"$ROOT"}"; fi
}

dir() { # PATH MODE UID:GID
  if [ ! -d "$1" ]; then mkdir -p "$1"; changed "created ${1#"$ROOT"}/"; fi
  perms "$1" "$2" "$3"
}

install_package() {
  [ -f "$FROM/dist/src/main.js" ] || die "$FROM is not built (no dist/src/main.js); run \"npm ci\" in $FROM first (it builds), or pass --from"
  [ -f "$FROM/package.json" ] || die "$FROM has no package.json; pass --from with an outpost checkout"
  dir "$APP" 0755 0:0
  local f rel removed=0
  QUIET=1
  WRITTEN=0
  # The package's own files, as npm would publish them (package.json "files").
  while IFS= read -r -d '' f; do
    rel="${f#"$FROM"/}"
    put "$f" "$APP/$rel" "$([ -x "$f" ] && echo 0755 || echo 0644)" 0:0
  done < <(
    find "$FROM/dist" "$FROM/config" "$FROM/systemd" -type f -print0 | sort -z
    for f in package.json package-lock.json README.md; do [ ! -f "$FROM/$f" ] || printf '%s\0' "$FROM/$f"; done
  )
  # Files of an older version that this one no longer has.
  while IFS= read -r -d '' f; do
    rel="${f#"$APP"/}"
    if [ ! -e "$FROM/$rel" ]; then rm -f "$f"; removed=$((removed + 1)); changed "removed ${f#"$ROOT"}"; fi
  done < <(find "$APP/dist" "$APP/config" "$APP/systemd" -type f -print0 2>/dev/null)
  QUIET=0
  if [ "$WRITTEN" -gt 0 ] || [ "$removed" -gt 0 ]; then say "/opt/outpost: $WRITTEN files written, $removed removed (not in this version)"; fi
  if [ "$NPM" = 1 ]; then
    local stamp="$APP/node_modules/.outpost-lock"
    if [ ! -f "$stamp" ] || ! cmp -s "$APP/package-lock.json" "$stamp"; then
      command -v npm >/dev/null || die "npm is missing; install Node.js 20 LTS first (README: Install on a Raspberry Pi)"
      say "installing production dependencies in /opt/outpost (compiles native modules where no prebuilt fits; minutes on a Pi)"
      # --ignore-scripts: the package's own "prepare" builds from source (dev tools); the
      # native modules are then built (or their prebuilt binary fetched) by npm rebuild.
      (cd "$APP" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3 @serialport/bindings-cpp) || die "npm ci in $APP failed; for native builds install build-essential and python3 (apt-get install build-essential python3)"
      cp "$APP/package-lock.json" "$stamp"
      changed "installed node_modules"
    fi
  fi
  mkdir -p "$(dirname "$BIN")"
  if [ "$(readlink "$BIN" 2>/dev/null || true)" != /opt/outpost/dist/src/main.js ]; then
    ln -sfn /opt/outpost/dist/src/main.js "$BIN"
    changed "linked /usr/local/bin/outpost"
  fi
}

ensure_user() {
  if [ -n "$ROOT" ] && [ ! -f "$ROOT/etc/passwd" ]; then die "$ROOT/etc/passwd is missing: --root must hold a system tree with /etc/passwd and /etc/group"; fi
  [ -n "$(group_field dialout 1)" ] || die "group dialout is missing on the target system (serial ports belong to it); create it with groupadd --system dialout"
  if [ -z "$(passwd_field outpost 1)" ]; then
    useradd "${user_args[@]}" --system --user-group --groups dialout --home-dir /var/lib/outpost --no-create-home --shell /usr/sbin/nologin --comment "outpost gateway" outpost
    changed "created system user outpost (groups outpost, dialout)"
  elif ! group_field dialout 4 | tr ',' '\n' | grep -qx outpost; then
    usermod "${user_args[@]}" --append --groups dialout outpost
    changed "added user outpost to group dialout"
  fi
}

do_install() {
  ensure_user
  local uid gid
  uid="$(passwd_field outpost 3)"
  gid="$(passwd_field outpost 4)"
  install_package
  dir "$ETC" 0750 "0:$gid"
  seed "$FROM/config/outpost.example.yaml" "$ETC/outpost.yaml" 0640 "0:$gid"
  seed "$FROM/config/devices.example.yaml" "$ETC/devices.yaml" 0640 "0:$gid"
  dir "$STATE" 0750 "$uid:$gid"
  put "$FROM/systemd/outpost.service" "$UNIT" 0644 0:0
  if [ "$SYSTEMCTL" = 1 ]; then
    command -v systemctl >/dev/null || die "systemctl is missing; pass --no-systemctl when installing without systemd"
    systemctl daemon-reload
    if ! systemctl is-enabled --quiet outpost 2>/dev/null; then systemctl enable outpost; changed "enabled outpost.service"; fi
  fi
  if [ "$CHANGED" = 1 ]; then say "done. Edit /etc/outpost/outpost.yaml, then: systemctl restart outpost; journalctl -u outpost -o cat -f"
  else say "already installed; nothing changed"; fi
}

do_uninstall() {
  if [ "$SYSTEMCTL" = 1 ] && command -v systemctl >/dev/null; then
    systemctl disable --now outpost 2>/dev/null && changed "stopped and disabled outpost.service" || true
  fi
  for p in "$UNIT" "$BIN"; do
    if [ -e "$p" ] || [ -L "$p" ]; then rm -f "$p"; changed "removed ${p#"$ROOT"}"; fi
  done
  if [ -d "$APP" ]; then rm -rf "$APP"; changed "removed /opt/outpost"; fi
  [ "$SYSTEMCTL" = 1 ] && command -v systemctl >/dev/null && systemctl daemon-reload || true
  if [ "$PURGE" = 1 ]; then
    for d in "$ETC" "$STATE"; do
      if [ -d "$d" ]; then rm -rf "$d"; changed "removed ${d#"$ROOT"}/"; fi
    done
    if [ -n "$(passwd_field outpost 1)" ]; then userdel "${user_args[@]}" outpost; changed "removed user outpost"; fi
  else
    say "kept /etc/outpost (config) and /var/lib/outpost (data, the outbox); --uninstall --purge removes them"
  fi
  [ "$CHANGED" = 1 ] || say "not installed; nothing changed"
}

if [ "$MODE" = install ]; then do_install; else do_uninstall; fi
