#!/usr/bin/env bash
# Tries the README's two first-screen commands as a new user would, on a fresh Debian 12: builds a minimal
# bookworm root with debootstrap (from Debian's archive; git, ca-certificates and sudo added), copies this
# checkout in (committed files only), runs `tools/bootstrap.sh && build/saqhost run configs/quickstart.toml`
# and then `tools/run_tests.sh` inside it, and reports each command's status and wall time.
# Too slow for CI (a full build and the quick start on 2 cores, about 30 min): run it by hand, as root, before
# changing what the bootstrap installs.  usage: sudo tools/fresh_check.sh [ROOT_DIR]   (default: a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "fresh_check: run as root (debootstrap and chroot need it)" >&2; exit 2; }
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; }
root=${1:-$(mktemp -d /var/tmp/saq-fresh.XXXXXX)}
cleanup() {
  for m in proc sys dev/pts dev; do umount "$root/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
start=$(date +%s)
debootstrap --variant=minbase --include=git,ca-certificates,sudo bookworm "$root" http://deb.debian.org/debian >/dev/null
echo "debootstrap: $(( $(date +%s) - start )) s"
mkdir -p "$root/home/user"
git archive --format=tar HEAD | tar -x -C "$root/home/user" --one-top-level=saq
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"

step() {  # name, command: runs it in the root, prints status and time
  local t0 rc
  t0=$(date +%s)
  set +e
  chroot "$root" /bin/bash -lc "cd /home/user/saq && $2" > "$root/home/user/$1.log" 2>&1
  rc=$?
  set -e
  echo "$1: exit $rc in $(( $(date +%s) - t0 )) s (log: $root/home/user/$1.log)"
  tail -n 3 "$root/home/user/$1.log" | sed 's/^/    /'
  return $rc
}
step quickstart "tools/bootstrap.sh && build/saqhost run configs/quickstart.toml" || exit 1
step tests "tools/run_tests.sh"
