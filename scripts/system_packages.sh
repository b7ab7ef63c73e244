#!/usr/bin/env bash
# Installs the Debian packages that tests need beyond Python's: chromium (headless, to load
# `realrl view`'s Rerun web viewer and take a screenshot). Idempotent: does nothing when
# they are there. Needs root and apt-get (CI's machine, the Docker image); elsewhere it says
# what to install and exits 0, and the tests that need the package skip, naming it.
set -euo pipefail
PACKAGES=(chromium)
missing=()
for pkg in "${PACKAGES[@]}"; do
  command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system_packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "system_packages: missing ${missing[*]}; install them (Debian: apt-get install" \
       "${missing[*]}); the tests that need them skip" >&2
fi
