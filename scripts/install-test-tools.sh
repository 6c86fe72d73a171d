#!/usr/bin/env bash
# System packages the tests need, from Debian. Idempotent: installs only what is missing. The tests fail
# (never skip) when a tool is missing, naming this script.
#   ops:   promtool and prometheus (package prometheus) for the alert rules and a real scrape, chromium for
#          the dashboard screenshot;
#   image: mmdebstrap, buildah, podman and runc to build and run the operator's image without a Docker
#          daemon or a registry (scripts/image.sh; test/e2e/image.test.ts).
# Usage: install-test-tools.sh [all|ops|image]   (default: all)
set -euo pipefail
what="${1:-all}"
need=()
if [ "$what" = all ] || [ "$what" = ops ]; then
  [ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus ] || need+=(prometheus)
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi
if [ "$what" = all ] || [ "$what" = image ]; then
  # uidmap: podman wants newuidmap even as root; containers-common comes with buildah (policy.json).
  for tool in mmdebstrap buildah podman runc; do [ -x "/usr/bin/$tool" ] || [ -x "/usr/sbin/$tool" ] || need+=("$tool"); done
  [ -x /usr/bin/newuidmap ] || need+=(uidmap)
fi
case "$what" in all|ops|image) ;; *) echo "usage: $0 [all|ops|image]" >&2; exit 2 ;; esac
if [ ${#need[@]} -eq 0 ]; then
  echo "[test-tools] $what: installed"
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
missing=()
for tool in "${need[@]}"; do
  case "$tool" in
    prometheus) for t in /usr/bin/promtool /usr/bin/prometheus; do [ -x "$t" ] || missing+=("$t"); done ;;
    uidmap) [ -x /usr/bin/newuidmap ] || missing+=(/usr/bin/newuidmap) ;;
    *) command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] || { echo "[test-tools] still missing after apt-get install: ${missing[*]}" >&2; exit 1; }
echo "[test-tools] installed: ${need[*]}"
