#!/usr/bin/env bash
# Remove edged. Config and data (ledger, registry, images) are kept unless
# --purge is given: an inspector may still need the ledger.
#   sudo scripts/uninstall.sh [--purge]
set -euo pipefail
DESTDIR=${DESTDIR:-}
NO_SYSTEM=${EDGED_NO_SYSTEM:-0}
purge=0
[ "${1:-}" = "--purge" ] && purge=1
say() { printf 'uninstall: %s\n' "$*"; }
if [ "$NO_SYSTEM" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
  systemctl disable --now edged.service 2>/dev/null || true
fi
rm -f "$DESTDIR/etc/systemd/system/edged.service" "$DESTDIR"/etc/systemd/system/edged-*.service
rm -f "$DESTDIR"/etc/udev/rules.d/*edged*.rules "$DESTDIR/usr/local/bin/edged"
rm -rf "$DESTDIR/opt/edged"
if [ $purge = 1 ]; then
  say "purging /etc/edged and /var/lib/edged"
  rm -rf "$DESTDIR/etc/edged" "$DESTDIR/var/lib/edged"
  [ "$NO_SYSTEM" != 1 ] && userdel edged 2>/dev/null || true
else
  say "kept /etc/edged and /var/lib/edged (use --purge to remove them)"
fi
[ "$NO_SYSTEM" != 1 ] && systemctl daemon-reload || true
say "done"
