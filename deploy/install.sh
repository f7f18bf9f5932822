#!/bin/sh
# Installs the collector on Debian 12 (bookworm) as root: Python and Chromium from Debian, the package
# into PREFIX/.venv. The README's install steps and the Dockerfile both run this script, so there is
# one list of steps. Usage: deploy/install.sh [PREFIX]   (default /opt/livestream-collector)
set -eu

prefix="${1:-/opt/livestream-collector}"
source_dir="$(cd "$(dirname "$0")/.." && pwd)"

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  python3 python3-venv ca-certificates chromium
python3 -m venv "$prefix/.venv"
"$prefix/.venv/bin/pip" install --quiet --no-cache-dir "$source_dir"
# Playwright drives Debian's Chromium; its own browser downloads are never needed.
"$prefix/.venv/bin/collector" --help >/dev/null
echo "installed: $prefix/.venv/bin/collector (Chromium: $(command -v chromium))"
