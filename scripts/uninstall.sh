#!/usr/bin/env bash
# Remove edged: the service, the units and udev rule, /opt/edged and the
# /usr/local/bin/edged link. Config (/etc/edged) and data (/var/lib/edged:
# ledger, registry, images, models) are kept unless --purge is given: an
# inspector may still need the ledger, so export or back it up first.
#
#   sudo scripts/uninstall.sh [--purge]     (or: sudo make uninstall [PURGE=1])
#
# DESTDIR=/tmp/root EDGED_NO_SYSTEM=1 works as for install.sh: remove from a
# throwaway root without touching users or systemd.
set -euo pipefail
DESTDIR=${DESTDIR:-}
NO_SYSTEM=${EDGED_NO_SYSTEM:-0}
PREFIX=/opt/edged
BIN=/usr/local/bin/edged
purge=0
case "${1:-}" in
  "") ;;
  --purge) purge=1 ;;
  *) echo "usage: scripts/uninstall.sh [--purge]" >&2; exit 2 ;;
esac
say() { printf 'uninstall: %s\n' "$*"; }
die() { printf 'uninstall: error: %s\n' "$*" >&2; exit 1; }

if [ -n "$DESTDIR" ] && [ "$NO_SYSTEM" != 1 ]; then
  die "DESTDIR needs EDGED_NO_SYSTEM=1 (users and systemd are the running system's)"
fi
systemd_up=0
if [ "$NO_SYSTEM" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || die "run as root: sudo scripts/uninstall.sh"
  [ -d /run/systemd/system ] && systemd_up=1
  if [ $systemd_up = 1 ]; then
    say "stopping edged"
    systemctl disable --now edged.service 2>/dev/null || true
    systemctl stop 'edged-usb-export@*.service' 2>/dev/null || true
  else
    systemctl disable edged.service 2>/dev/null || true
  fi
fi

rm -f "$DESTDIR/etc/systemd/system/edged.service" \
      "$DESTDIR"/etc/systemd/system/edged-*.service \
      "$DESTDIR"/etc/udev/rules.d/*-edged-*.rules
# Only our link: a different edged someone put there is left alone.
if [ -L "$DESTDIR$BIN" ] && [ "$(readlink "$DESTDIR$BIN")" = "$PREFIX/venv/bin/edged" ]; then
  rm -f "$DESTDIR$BIN"
fi
rm -rf "$DESTDIR$PREFIX"
say "removed $PREFIX, the systemd units, the udev rule and $BIN"

if [ $purge = 1 ]; then
  say "purging /etc/edged, /var/lib/edged and /var/log/edged"
  rm -rf "$DESTDIR/etc/edged" "$DESTDIR/var/lib/edged" "$DESTDIR/var/log/edged"
  if [ "$NO_SYSTEM" != 1 ] && id edged >/dev/null 2>&1; then
    userdel edged 2>/dev/null || say "could not remove user edged (still logged in or running?)"
  fi
else
  say "kept /etc/edged and /var/lib/edged (ledger, registry, images): scripts/uninstall.sh --purge removes them"
fi
if [ $systemd_up = 1 ]; then
  systemctl daemon-reload
  udevadm control --reload-rules 2>/dev/null || true
fi
say "done"
