#!/bin/sh
# Installs what Headroom needs on Debian or Ubuntu (Swift 6 already installed), builds it, and runs the
# command given (default: the demo study). Works as root (containers, no sudo) and as a sudo user.
#   sh Tools/setup.sh                      # install, build, run `headroom study` on the demo model
#   sh Tools/setup.sh eval M.hrz --tasks …  # install, build, run that command instead
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
missing=""
for pkg in libzstd-dev libopenblas-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    # A fresh image has no package lists: apt-get install finds nothing until update has run.
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
if [ "$#" -eq 0 ]; then set -- study; fi
exec swift run -c release headroom "$@"
