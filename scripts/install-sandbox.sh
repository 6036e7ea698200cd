#!/usr/bin/env bash
# The sandbox the relay loads unsafe formats in (harness/sandbox.py): bubblewrap from the distribution's packages.
# Installed once when missing and this user may install (root, or sudo without a password); otherwise one line
# says what to do, and the formats that need it are not loaded (the run still works: it fails closed).
set -euo pipefail
command -v bwrap >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "cm: no bubblewrap (bwrap): install it to let the relay load unsafe formats in a sandbox" >&2; exit 0
fi
if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "cm: no bubblewrap (bwrap): run 'sudo apt-get install bubblewrap' to load unsafe formats in a sandbox" >&2; exit 0
fi
echo "cm: installing bubblewrap (the relay's sandbox)" >&2
"${sudo[@]}" apt-get update -qq >/dev/null && "${sudo[@]}" apt-get install -y -qq bubblewrap >/dev/null \
  || echo "cm: installing bubblewrap failed; unsafe formats will not be loaded" >&2
