#!/usr/bin/env bash
# Install or upgrade edged on a Raspberry Pi OS Bookworm / Debian 12 board.
#
#   sudo scripts/install.sh               install, or upgrade in place
#   sudo scripts/uninstall.sh [--purge]   remove (data kept unless --purge)
#
# Re-running upgrades the code and the unit files and keeps /etc/edged and
# /var/lib/edged untouched. For tests and image builds, DESTDIR installs
# into a throwaway root without touching users, apt or systemd:
#   DESTDIR=/tmp/root EDGED_NO_SYSTEM=1 scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
DESTDIR=${DESTDIR:-}
NO_SYSTEM=${EDGED_NO_SYSTEM:-0}
PREFIX=/opt/edged
ETC=/etc/edged
DATA=/var/lib/edged
PY=${PYTHON:-python3}

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

if [ "$NO_SYSTEM" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || die "run as root (sudo scripts/install.sh)"
  missing=()
  for p in python3-venv mosquitto-clients fonts-wqy-microhei; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! id edged >/dev/null 2>&1; then
    say "creating system user edged"
    useradd --system --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin edged
  fi
  for g in gpio dialout video plugdev; do
    getent group "$g" >/dev/null && usermod -a -G "$g" edged
  done
fi

say "installing code to $DESTDIR$PREFIX"
install -d "$DESTDIR$PREFIX" "$DESTDIR$ETC" "$DESTDIR$DATA" "$DESTDIR$DATA/models"
# Code is copied (not linked) so the clone can be removed after install.
rm -rf "$DESTDIR$PREFIX/src.new"
mkdir -p "$DESTDIR$PREFIX/src.new"
tar -C "$SRC" --exclude=.git --exclude=.venv --exclude=var --exclude='models/onnx' \
    --exclude='__pycache__' -cf - . | tar -C "$DESTDIR$PREFIX/src.new" -xf -
rm -rf "$DESTDIR$PREFIX/src.old"
[ -d "$DESTDIR$PREFIX/src" ] && mv "$DESTDIR$PREFIX/src" "$DESTDIR$PREFIX/src.old"
mv "$DESTDIR$PREFIX/src.new" "$DESTDIR$PREFIX/src"

VENV="$DESTDIR$PREFIX/venv"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $PREFIX/venv (system site packages, for picamera2)"
  "$PY" -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -c "$DESTDIR$PREFIX/src/constraints.txt" "$DESTDIR$PREFIX/src"
rm -rf "$DESTDIR$PREFIX/src.old"

say "fetching model files into $DATA/models"
"$VENV/bin/python" "$DESTDIR$PREFIX/src/models/fetch.py" --dest "$DESTDIR$DATA/models"

if [ ! -f "$DESTDIR$ETC/edged.toml" ]; then
  say "writing $ETC/edged.toml from the example (edit it, then: edged config check)"
  sed -e "s#^model_dir = .*#model_dir = \"$DATA/models\"#" \
      "$SRC/config/edged.example.toml" > "$DESTDIR$ETC/edged.toml"
else
  say "keeping existing $ETC/edged.toml"
fi
install -m 0644 "$SRC/config/edged.example.toml" "$DESTDIR$ETC/edged.example.toml"

install -d "$DESTDIR/etc/systemd/system" "$DESTDIR/etc/udev/rules.d"
install -m 0644 "$SRC/systemd/edged.service" "$DESTDIR/etc/systemd/system/edged.service"
for f in "$SRC"/systemd/edged-*.service; do
  [ -e "$f" ] && install -m 0644 "$f" "$DESTDIR/etc/systemd/system/$(basename "$f")"
done
for f in "$SRC"/systemd/*.rules; do
  [ -e "$f" ] && install -m 0644 "$f" "$DESTDIR/etc/udev/rules.d/$(basename "$f")"
done
install -d "$DESTDIR/usr/local/bin"
ln -sf "$PREFIX/venv/bin/edged" "$DESTDIR/usr/local/bin/edged"

if [ "$NO_SYSTEM" != 1 ]; then
  chown -R edged:edged "$DATA"
  chown root:edged "$ETC" "$ETC/edged.toml"
  chmod 0750 "$ETC"; chmod 0640 "$ETC/edged.toml"
  systemctl daemon-reload
  udevadm control --reload-rules 2>/dev/null || true
  systemctl enable edged.service >/dev/null
  if "$VENV/bin/edged" --config "$ETC/edged.toml" config check; then
    systemctl restart edged.service
    say "edged (re)started: journalctl -u edged -f"
  else
    say "config has problems: fix $ETC/edged.toml, then: systemctl restart edged"
  fi
fi
say "done"
