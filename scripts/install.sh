#!/usr/bin/env bash
# Install or upgrade edged on a Raspberry Pi OS Bookworm / Debian 12 board.
#
#   sudo scripts/install.sh               install, or upgrade in place
#   sudo scripts/uninstall.sh [--purge]   remove (data kept unless --purge)
#   (or: sudo make install / sudo make uninstall [PURGE=1])
#
# What it does (docs/INSTALL.md has the whole story):
#   - apt: python3-venv, mosquitto-clients, a CJK font (python3-picamera2 on a Pi)
#   - system user edged, in the groups gpio dialout video plugdev audio (those that exist)
#   - a copy of this clone in /opt/edged/src, a venv in /opt/edged/venv that
#     sees the system site packages (picamera2 comes from apt), the package
#     and its pinned dependencies (constraints.txt) installed into it
#   - the models, SHA-256 checked, in /var/lib/edged/models
#   - /etc/edged/edged.toml from the example (only if there is none yet) and
#     /etc/edged/edged.example.toml (always refreshed)
#   - systemd units and the udev rule; /usr/local/bin/edged -> the venv's edged
#   - enables the service and (re)starts it if the config checks out
#
# Re-running upgrades the code, the venv and the unit files and leaves
# /etc/edged/edged.toml and /var/lib/edged alone.
#
# Environment:
#   PYTHON=python3            interpreter the venv is made from (3.11 or newer)
#   EDGED_MODELS_FROM=DIR     copy the models from DIR (hash-checked) instead of
#                             downloading them, e.g. a clone's models/onnx
#   DESTDIR=/tmp/root EDGED_NO_SYSTEM=1
#                             install into a throwaway root and touch no users,
#                             apt, systemd or udev (tests). The venv in it is bound
#                             to the DESTDIR path: to build an SD card image, run
#                             this script inside the image's chroot instead.
set -euo pipefail
MODELS_FROM=${EDGED_MODELS_FROM:-}
if [ -n "$MODELS_FROM" ]; then  # relative to where it was run from
  MODELS_FROM=$(cd "$MODELS_FROM" 2>/dev/null && pwd) \
    || { echo "install: error: EDGED_MODELS_FROM=${EDGED_MODELS_FROM}: no such folder" >&2; exit 1; }
fi
cd "$(dirname "$0")/.."
SRC=$(pwd)
DESTDIR=${DESTDIR:-}
NO_SYSTEM=${EDGED_NO_SYSTEM:-0}
PREFIX=/opt/edged
ETC=/etc/edged
DATA=/var/lib/edged
BIN=/usr/local/bin/edged
PY=${PYTHON:-python3}
GROUPS_WANTED=(gpio dialout video plugdev audio)

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

if [ -n "$DESTDIR" ] && [ "$NO_SYSTEM" != 1 ]; then
  die "DESTDIR needs EDGED_NO_SYSTEM=1 (users, apt and systemd are the running system's); for an image, run install.sh inside its chroot"
fi
if [ -n "$DESTDIR" ]; then
  case "$DESTDIR" in /*) ;; *) die "DESTDIR must be an absolute path" ;; esac
fi

on_pi=0
grep -qs 'Raspberry Pi' /proc/device-tree/model && on_pi=1

if [ "$NO_SYSTEM" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || die "run as root: sudo scripts/install.sh"
  missing=()
  wanted=(python3-venv mosquitto-clients fonts-wqy-microhei)
  [ $on_pi = 1 ] && wanted+=(python3-picamera2)
  for p in "${wanted[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || say "apt-get update failed; trying the install with the lists there are"
    apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "apt-get could not install ${missing[*]}: check the network and apt sources, then re-run"
  fi
fi

command -v "$PY" >/dev/null 2>&1 || die "$PY not found: apt install python3 python3-venv (or set PYTHON=)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PY is older than Python 3.11 (Bookworm's python3 is 3.11): set PYTHON= to a newer one"

if [ "$NO_SYSTEM" != 1 ]; then
  if ! id edged >/dev/null 2>&1; then
    say "creating system user edged"
    useradd --system --user-group --home-dir "$DATA" --no-create-home \
      --shell /usr/sbin/nologin --comment "edged gate daemon" edged
  fi
  for g in "${GROUPS_WANTED[@]}"; do
    if getent group "$g" >/dev/null; then
      usermod -a -G "$g" edged
    else
      say "no group $g on this system: edged is not added to it (fine off a Pi)"
    fi
  done
fi

say "installing code to $DESTDIR$PREFIX"
install -d -m 0755 "$DESTDIR$PREFIX" "$DESTDIR$ETC" "$DESTDIR$DATA" "$DESTDIR$DATA/models"
# Code is copied (not linked) so the clone can be removed after install. The
# new copy replaces the old one only once it is complete.
rm -rf "$DESTDIR$PREFIX/src.new" "$DESTDIR$PREFIX/src.old"
mkdir -p "$DESTDIR$PREFIX/src.new"
tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./build \
    --exclude=./models/onnx --exclude=./models/cache --exclude=./bench/out --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache \
    --exclude=.hypothesis -cf - . | tar -C "$DESTDIR$PREFIX/src.new" -xf -
[ -d "$DESTDIR$PREFIX/src" ] && mv "$DESTDIR$PREFIX/src" "$DESTDIR$PREFIX/src.old"
mv "$DESTDIR$PREFIX/src.new" "$DESTDIR$PREFIX/src"
CODE="$DESTDIR$PREFIX/src"

VENV="$DESTDIR$PREFIX/venv"
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  say "the venv in $PREFIX/venv is broken (Python upgraded?): making a new one"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $PREFIX/venv (system site packages, for picamera2)"
  "$PY" -m venv --system-site-packages "$VENV" \
    || die "could not create the venv: apt install python3-venv, then re-run"
fi
say "installing edged and its dependencies into the venv (pinned by constraints.txt)"
# Not editable and not a wheel cache: pip builds the copied source, so an
# upgrade replaces the installed code even when the version number is the same.
if ! "$VENV/bin/python" -m pip install -q --no-warn-script-location \
    -c "$CODE/constraints.txt" "$CODE"; then
  if [ -d "$DESTDIR$PREFIX/src.old" ]; then
    rm -rf "$CODE" && mv "$DESTDIR$PREFIX/src.old" "$CODE"
  fi
  die "pip could not install edged (see above); the previous version is still installed"
fi
rm -rf "$DESTDIR$PREFIX/src.old" "$CODE/build" "$CODE"/*.egg-info

# picamera2 from apt uses python3-simplejpeg, built against Bookworm's numpy 1.x;
# the venv's numpy 2.x cannot load it. A simplejpeg wheel in the venv, built
# against numpy 2, shadows it.
if "$PY" -c 'import picamera2' >/dev/null 2>&1; then
  say "picamera2 found (apt): installing simplejpeg for the venv's numpy"
  "$VENV/bin/python" -m pip install -q -c "$CODE/constraints.txt" simplejpeg \
    || say "could not install simplejpeg: the picamera2 camera source may fail to import"
  "$VENV/bin/python" -c 'import picamera2' \
    || say "picamera2 does not import in the venv: use camera source opencv, or see docs/INSTALL.md"
fi

if [ -n "$MODELS_FROM" ]; then
  say "installing model files from $MODELS_FROM into $DATA/models"
  "$VENV/bin/python" "$CODE/models/fetch.py" --dest "$DESTDIR$DATA/models" --from "$MODELS_FROM" \
    || die "model files in $MODELS_FROM are missing or do not match models/manifest.toml"
else
  # Deriving the faster recogniser needs onnx, which the daemon does not: it goes
  # into a throwaway set-up environment, not into /opt/edged/venv.
  SETUP_VENV=$(mktemp -d)/setup-venv
  "$VENV/bin/python" -m venv --system-site-packages "$SETUP_VENV" >/dev/null \
    && "$SETUP_VENV/bin/python" -m pip install -q -c "$CODE/constraints.txt" onnx \
    || die "could not install onnx for the model set-up (see above); re-run when the network is back, or set EDGED_MODELS_FROM=DIR"
  say "fetching model files into $DATA/models"
  "$SETUP_VENV/bin/python" "$CODE/models/fetch.py" --dest "$DESTDIR$DATA/models" \
    || die "could not fetch the models (see above); re-run when the network is back, or set EDGED_MODELS_FROM=DIR"
  rm -rf "$(dirname "$SETUP_VENV")"
fi

if [ ! -f "$DESTDIR$ETC/edged.toml" ]; then
  say "writing $ETC/edged.toml from the example (edit it, then: edged config check)"
  sed -e "s#^model_dir = .*#model_dir = \"$DATA/models\"#" \
      "$CODE/config/edged.example.toml" > "$DESTDIR$ETC/edged.toml.new"
  grep -q "^model_dir = \"$DATA/models\"" "$DESTDIR$ETC/edged.toml.new" \
    || die "the example config has no model_dir line to point at $DATA/models"
  mv "$DESTDIR$ETC/edged.toml.new" "$DESTDIR$ETC/edged.toml"
else
  say "keeping existing $ETC/edged.toml (compare with $ETC/edged.example.toml for new keys)"
fi
install -m 0644 "$CODE/config/edged.example.toml" "$DESTDIR$ETC/edged.example.toml"

install -d "$DESTDIR/etc/systemd/system" "$DESTDIR/etc/udev/rules.d"
for f in "$CODE"/systemd/*.service; do
  install -m 0644 "$f" "$DESTDIR/etc/systemd/system/$(basename "$f")"
done
for f in "$CODE"/systemd/*.rules; do
  install -m 0644 "$f" "$DESTDIR/etc/udev/rules.d/$(basename "$f")"
done
install -d "$DESTDIR$(dirname "$BIN")"
ln -sfn "$PREFIX/venv/bin/edged" "$DESTDIR$BIN"

config_ok=1
if ! "$VENV/bin/edged" config check "$DESTDIR$ETC/edged.toml"; then
  config_ok=0
  say "$ETC/edged.toml has the problems above: fix them, then: edged config check"
fi

if [ "$NO_SYSTEM" != 1 ]; then
  chown -R edged:edged "$DATA"
  chown root:edged "$ETC" "$ETC/edged.toml"
  chmod 0750 "$ETC"
  chmod 0640 "$ETC/edged.toml"
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    udevadm control --reload-rules 2>/dev/null || true
    systemctl enable edged.service >/dev/null 2>&1
    if [ $config_ok = 1 ]; then
      systemctl restart edged.service
      say "edged (re)started: journalctl -u edged -f"
    else
      say "edged not started: once edged config check passes, run: sudo systemctl restart edged"
    fi
  else
    # A chroot or an image build: no running systemd to talk to.
    systemctl enable edged.service >/dev/null 2>&1 \
      || say "could not enable edged.service here: run sudo systemctl enable edged on the board"
    say "systemd is not running here: edged starts at the next boot"
  fi
fi
say "done"
