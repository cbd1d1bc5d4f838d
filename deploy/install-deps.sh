#!/usr/bin/env bash
# Installs herd's build and test dependencies from Debian 12 packages (see README: why each).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# nodejs/npm may already come from elsewhere (e.g. nodesource); don't fight it.
pkgs=$(grep -v '^#' "$here/apt-packages.txt")
if command -v npm >/dev/null 2>&1; then pkgs=$(echo "$pkgs" | grep -v -x -e nodejs -e npm); fi
$SUDO apt-get install -y --no-install-recommends $pkgs
