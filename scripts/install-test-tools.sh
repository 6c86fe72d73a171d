#!/usr/bin/env bash
# System packages the operations tests need, from Debian: promtool and prometheus (package prometheus) for
# the alert rules and a real scrape, chromium for the dashboard screenshot. Idempotent: installs only what
# is missing. The tests fail (never skip) when a tool is missing, naming this script.
set -euo pipefail
need=()
[ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus ] || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  echo "[test-tools] prometheus, promtool and chromium are installed"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "[test-tools] need root (or sudo) to apt-get install ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "[test-tools] apt-get install ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for tool in /usr/bin/promtool /usr/bin/prometheus /usr/bin/chromium; do
  [ -x "$tool" ] || { echo "[test-tools] $tool is still missing after apt-get install" >&2; exit 1; }
done
echo "[test-tools] installed: $(promtool --version 2>&1 | head -1); $(chromium --version 2>/dev/null)"
