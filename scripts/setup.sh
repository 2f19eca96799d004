#!/usr/bin/env bash
# Set up everything edged needs on a Debian 12 / Raspberry Pi OS Bookworm
# machine: system packages, a virtual environment, the package itself and
# the ONNX model files. Safe to run again: each step skips what is done.
#
#   scripts/setup.sh            # for the demo and the daemon
#   scripts/setup.sh --test     # also the test tools and the MQTT broker
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
VENV=${EDGED_VENV:-.venv}
PY=${PYTHON:-python3}

say() { printf 'setup: %s\n' "$*"; }

# --- system packages -------------------------------------------------------
apt_pkgs=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || apt_pkgs+=(mosquitto)
fc-list 2>/dev/null | grep -qi 'wqy\|noto sans cjk' || apt_pkgs+=(fonts-wqy-microhei)
"$PY" -c 'import venv, ensurepip' 2>/dev/null || apt_pkgs+=(python3-venv)
# ffmpeg sends the H.264 camera stream of the camera tests, the camera-path and clip
# benches; the display tests play WAV prompts through ALSA's null device (aplay).
if [ $want_test = 1 ] && ! command -v ffmpeg >/dev/null 2>&1; then apt_pkgs+=(ffmpeg); fi
if [ $want_test = 1 ] && ! command -v aplay >/dev/null 2>&1; then apt_pkgs+=(alsa-utils); fi
if [ $want_test = 1 ]; then
  # FAT32 and exFAT stick images for the USB export tests: mkfs.vfat, mkfs.exfat,
  # mcopy (FAT32 without the kernel driver), exfat-fuse (exFAT through FUSE).
  command -v mkfs.vfat >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.vfat ] || apt_pkgs+=(dosfstools)
  command -v mkfs.exfat >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.exfat ] || apt_pkgs+=(exfatprogs)
  command -v mcopy >/dev/null 2>&1 || apt_pkgs+=(mtools)
  command -v mount.exfat-fuse >/dev/null 2>&1 || [ -x /usr/sbin/mount.exfat-fuse ] \
    || apt_pkgs+=(exfat-fuse)
fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  say "installing system packages: ${apt_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null \
    || { say "could not install ${apt_pkgs[*]} with apt-get: install them by hand and re-run"; exit 1; }
  # Debian starts the broker as a service on 1883; edged's tests never use it.
fi

# --- Python ------------------------------------------------------------------
"$PY" - <<'PYEOF' || { say "Python 3.11 or newer is needed"; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PYEOF
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  # On a Pi, picamera2 comes from the OS (apt install python3-picamera2):
  # let the venv see it.
  if "$PY" -c 'import picamera2' 2>/dev/null; then
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
fi
# [models]: onnx, which models/fetch.py needs to derive the faster recogniser; [demo]:
# pillow, which draws the demo's plate scenes
# (set-up only: the daemon and the .deb do without it).
extras="[models,demo]"
[ $want_test = 1 ] && extras="[models,demo,video,test]"
stamp="$VENV/.edged-installed"
if [ $want_test = 1 ]; then stamp="$stamp-test"; fi
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  say "installing edged$extras and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".$extras"
  touch "$stamp"
fi

# --- models --------------------------------------------------------------------
"$VENV/bin/python" models/fetch.py
say "ready"
