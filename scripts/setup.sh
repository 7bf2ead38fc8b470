#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu with Python 3.11: Debian packages, a venv, pinned pip packages.
# Usage: scripts/setup.sh runtime|test
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-runtime}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else echo "need root for: $*" >&2; return 1; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] >= (3, 11), sys.version' \
  || { echo "GridOps needs Python 3.11 or newer" >&2; exit 1; }

# The weekly PDF is laid out by WeasyPrint (Pango) with an embedded CJK font.
apt_install fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0
if [ "$kind" = test ]; then
  # Browser tests drive Debian's Chromium; pdftoppm and pdftotext check the PDF.
  apt_install chromium chromium-driver poppler-utils
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; "$PYTHON" -m venv .venv; }
fi

requirements=requirements.txt
[ "$kind" = test ] && requirements=requirements-test.txt
stamp=".venv/.installed-$(cat requirements.txt "$requirements" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$requirements"
  touch "$stamp"
fi
