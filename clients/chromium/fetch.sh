#!/bin/sh
# Sends headless Chromium through a client scenario, as a client under test for misdirect, by
# the client profile clients/chromium.yaml:
#
#   misdirect run --client clients/chromium.yaml
#
# Chromium trusts the CA file given first (in a throwaway NSS database), resolves every *.test
# name to 127.0.0.1 and opens the driver page, which fetches the scenario's URLs in order.
# Needs the Debian packages chromium and libnss3-tools.
set -eu
ca="$1"
driver="$2"
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
mkdir -p "$home/.pki/nssdb"
certutil -d "sql:$home/.pki/nssdb" -N --empty-password
certutil -d "sql:$home/.pki/nssdb" -A -t "C,," -n misdirect -i "$ca"
HOME="$home" chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$home/profile" --host-resolver-rules='MAP *.test 127.0.0.1' \
  --virtual-time-budget=10000 --dump-dom "$driver" >/dev/null 2>&1
