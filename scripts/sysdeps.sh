#!/usr/bin/env bash
# System packages the test suite needs (servers it starts on loopback) or uses when present (headless
# Chromium, which opens the job reports in tests/test_cli.py; that test is skipped, saying so, without
# it). Installs them when run as root; otherwise says exactly what to install. Safe to run repeatedly.
set -euo pipefail
need=()
want=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v ip >/dev/null 2>&1 || need+=(iproute2)  # the multi-host testbed: ip netns, veth, bridge, tc
command -v chromium >/dev/null 2>&1 || want+=(chromium)
all=("${need[@]}" "${want[@]}")
if [ ${#all[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    if [ ${#want[@]} -gt 0 ]; then
        echo "Optional system packages missing (their tests are skipped): ${want[*]}" >&2
    fi
    if [ ${#need[@]} -gt 0 ]; then
        echo "Missing system packages: ${need[*]}" >&2
        echo "Install them first, e.g.:  sudo apt-get update && sudo apt-get install -y ${all[*]}" >&2
        exit 1
    fi
    exit 0
fi
echo "Installing system packages: ${all[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${all[@]}" >/dev/null
