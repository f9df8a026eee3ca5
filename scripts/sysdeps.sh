#!/usr/bin/env bash
# System packages the test suite needs (servers it starts on loopback). Installs them when run
# as root; otherwise says exactly what to install. Safe to run repeatedly.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# headless Chromium opens the job reports in tests/test_cli.py (skipped, saying so, without it)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "Missing system packages: ${need[*]}" >&2
    echo "Install them first, e.g.:  sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
    exit 1
fi
echo "Installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
