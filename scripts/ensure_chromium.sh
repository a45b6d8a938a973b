#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (never a downloaded browser). Install it with apt
# when it is missing and we can (root, or password-less sudo); otherwise say so: those tests
# then skip with the reason. Never fails `make test`.
set -u
[ -x /usr/bin/chromium ] && exit 0
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    SUDO="none"
  fi
  if [ "$SUDO" != none ]; then
    echo "Installing Debian's chromium for the browser tests (apt-get)..."
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    if DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null 2>&1 \
        && [ -x /usr/bin/chromium ]; then
      exit 0
    fi
  fi
fi
echo "note: /usr/bin/chromium is missing and could not be installed (needs apt-get and root" \
     "or sudo): the browser tests will skip." >&2
exit 0
