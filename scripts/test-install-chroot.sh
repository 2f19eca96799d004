#!/usr/bin/env bash
# Install edged into a fresh Debian 12 (bookworm) root made by debootstrap,
# the way a technician installs it on a board, and check the result. Slow
# (minutes: a base system and the Python wheels are downloaded), needs root
# and the network; CI does not run it (tests/install/test_install.py is the
# fast check). See docs/INSTALL.md.
#
#   sudo scripts/test-install-chroot.sh [--arch arm64] [--pytest "ARGS"] [--keep]
#
# In the chroot, as root, with no systemd running: scripts/install.sh in its
# normal mode (apt packages, the edged user and groups, /opt/edged, models,
# /etc/edged, units enabled for the next boot), then: edged --version,
# edged config check, the user and the enabled unit; a second install.sh
# (upgrade) keeps an edited config and a data file; uninstall.sh keeps them;
# uninstall.sh --purge removes them.
#
#   --arch arm64   a 64-bit Pi's architecture, run through qemu-user-static
#                  (apt install qemu-user-static binfmt-support; binfmt_misc
#                  must be mounted). Everything runs emulated: much slower.
#   --pytest ARGS  also run pytest ARGS from /opt/edged/src with the installed
#                  venv (test tools and mosquitto are added to the chroot)
#   --keep         leave the chroot behind (its path is printed)
#
# Environment: MIRROR=URL (default: the first Debian mirror in this machine's
# apt sources), EDGED_MODELS_FROM=DIR (default: this clone's models/onnx if
# fetched, else the models are downloaded in the chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
ARCH=$(dpkg --print-architecture)
PYTEST_ARGS=""
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH=$2; shift 2 ;;
    --pytest) PYTEST_ARGS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--arch ARCH] [--pytest ARGS] [--keep]" >&2; exit 2 ;;
  esac
done
say() { printf 'chroot-test: %s\n' "$*"; }
die() { printf 'chroot-test: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"

mirror_from_apt() {
  # deb822 sources first, then the one-line format.
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk '/^URIs:/ {print $2; exit}' "$f" | grep -v -- '-security' && return 0
  done
  awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true
}
MIRROR=${MIRROR:-$(mirror_from_apt | head -1)}
[ -n "$MIRROR" ] || die "no Debian mirror in this machine's apt sources: set MIRROR=URL"

QEMU=""
if [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
  qarch=$ARCH
  [ "$ARCH" = arm64 ] && qarch=aarch64
  QEMU=$(command -v "qemu-$qarch-static" || true)
  [ -n "$QEMU" ] || die "qemu-$qarch-static is missing: apt-get install qemu-user-static binfmt-support"
  grep -qs enabled "/proc/sys/fs/binfmt_misc/qemu-$qarch" \
    || die "binfmt for $qarch is not enabled: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-$qarch"
fi

MODELS=${EDGED_MODELS_FROM:-}
if [ -z "$MODELS" ] && [ -f "$SRC/models/onnx/clp_det.onnx" ]; then MODELS="$SRC/models/onnx"; fi

ROOT=$(mktemp -d /var/tmp/edged-chroot.XXXXXX)
MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
  if [ $KEEP = 1 ]; then say "chroot kept: $ROOT"; else rm -rf "$ROOT"; fi
}
trap cleanup EXIT
started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started)) s"; }

say "debootstrap bookworm ($ARCH) from $MIRROR into $ROOT"
include=python3,python3-venv,ca-certificates,systemd,passwd
if [ -n "$QEMU" ]; then
  debootstrap --foreign --arch="$ARCH" --variant=minbase --include="$include" \
    bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 || die "debootstrap failed: $ROOT.debootstrap.log"
  # binfmt may name the interpreter by another path than the binary: both go in.
  interp=$(awk '/^interpreter/ {print $2}' "/proc/sys/fs/binfmt_misc/qemu-$qarch")
  for p in "$QEMU" "$interp"; do
    install -D -m 0755 "$QEMU" "$ROOT$p"
  done
  chroot "$ROOT" /debootstrap/debootstrap --second-stage >>"$ROOT.debootstrap.log" 2>&1 \
    || die "debootstrap second stage failed: $ROOT.debootstrap.log"
else
  debootstrap --arch="$ARCH" --variant=minbase --include="$include" \
    bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 || die "debootstrap failed: $ROOT.debootstrap.log"
fi
rm -f "$ROOT.debootstrap.log"
say "base system ready after $(elapsed)"

# Under qemu-user, /sys would show this machine's CPUs: onnxruntime's cpuinfo
# then crashes at import (an emulation artefact; a real arm64 board is fine).
mounts=(proc dev dev/pts)
[ -z "$QEMU" ] && mounts+=(sys)
for m in "${mounts[@]}"; do
  mkdir -p "$ROOT/$m"
  case $m in
    proc) mount -t proc proc "$ROOT/proc" ;;
    sys) mount -t sysfs sys "$ROOT/sys" ;;
    *) mount --bind "/$m" "$ROOT/$m" ;;
  esac
  MOUNTS+=("$ROOT/$m")
done
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
# This machine's trust store (it may hold a proxy's CA) for pip in the chroot.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/root/host-ca.crt"

mkdir -p "$ROOT/root/edged"
tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./build \
    --exclude=./models/onnx --exclude=./bench/out --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.hypothesis -cf - . \
  | tar -C "$ROOT/root/edged" -xf -
if [ -n "$MODELS" ]; then
  mkdir -p "$ROOT/root/models" && cp "$MODELS"/* "$ROOT/root/models/"
fi

in_root() {
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 PIP_CERT=/root/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ${MODELS:+EDGED_MODELS_FROM=/root/models} "$@"
}

say "install.sh (first install)"
in_root bash /root/edged/scripts/install.sh
say "installed after $(elapsed)"

say "checks"
in_root id edged
in_root /usr/local/bin/edged --version
in_root /usr/local/bin/edged config check
[ "$(in_root systemctl is-enabled edged.service)" = enabled ] || die "edged.service is not enabled"
[ "$(in_root stat -c %U /var/lib/edged)" = edged ] || die "/var/lib/edged is not owned by edged"
[ "$(in_root stat -c '%U:%G %a' /etc/edged/edged.toml)" = "root:edged 640" ] \
  || die "/etc/edged/edged.toml should be root:edged 0640"
in_root python3 - <<'EOF'
import hashlib, tomllib, pathlib
doc = tomllib.loads(pathlib.Path("/opt/edged/src/models/manifest.toml").read_text())
man = doc["model"] + doc.get("derived", [])  # derived: made at set-up, same hash check
for m in man:
    got = hashlib.sha256(pathlib.Path("/var/lib/edged/models", m["name"]).read_bytes()).hexdigest()
    assert got == m["sha256"], m["name"]
print(f"{len(man)} model files match the manifest")
EOF

say "install.sh again (upgrade) keeps config and data"
sed -i 's/^id = "site1"/id = "chroot-test"/' "$ROOT/etc/edged/edged.toml"
echo keep >"$ROOT/var/lib/edged/keep.txt"
in_root bash /root/edged/scripts/install.sh
grep -q '^id = "chroot-test"' "$ROOT/etc/edged/edged.toml" || die "upgrade lost the config edit"
[ -f "$ROOT/var/lib/edged/keep.txt" ] || die "upgrade lost /var/lib/edged/keep.txt"

if [ -n "$PYTEST_ARGS" ]; then
  say "pytest $PYTEST_ARGS (in the chroot, with the installed venv)"
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
  in_root /opt/edged/venv/bin/python -m pip install -q -c /opt/edged/src/constraints.txt pytest hypothesis jsonschema
  # shellcheck disable=SC2086
  in_root sh -c "cd /opt/edged/src && EDGED_MODEL_DIR=/var/lib/edged/models /opt/edged/venv/bin/python -m pytest -p no:cacheprovider $PYTEST_ARGS" \
    || { say "pytest failed after $(elapsed)"; exit 1; }
fi

say "uninstall.sh keeps config and data; --purge removes them"
in_root bash /root/edged/scripts/uninstall.sh
[ ! -e "$ROOT/opt/edged" ] && [ -f "$ROOT/etc/edged/edged.toml" ] && [ -f "$ROOT/var/lib/edged/keep.txt" ] \
  || die "uninstall did not keep config and data, or left /opt/edged"
in_root bash /root/edged/scripts/uninstall.sh --purge
[ ! -e "$ROOT/etc/edged" ] && [ ! -e "$ROOT/var/lib/edged" ] || die "--purge left /etc/edged or /var/lib/edged"
! in_root id edged >/dev/null 2>&1 || die "--purge left the user edged"

say "PASS ($ARCH) in $(elapsed)"
