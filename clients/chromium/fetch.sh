#!/bin/sh
# Sends headless Chromium through a client scenario, as a client under test for misdirect, by
# the client profile clients/chromium.yaml:
#
#   misdirect run --client clients/chromium.yaml
#
# Chromium trusts the CA file given first (in a throwaway NSS database) and opens the driver
# page, which fetches the scenario's URLs in order. It resolves the scenario's names (from
# curl's --resolve options, given second) as it resolves any name, through the system resolver,
# in a mount namespace of its own whose /etc/hosts maps them to 127.0.0.1 (unshare; the
# machine's file is left alone), so that names share an address as they would in DNS.
# Needs the Debian packages chromium and libnss3-tools.
set -eu
ca="$1"
resolve="$2"
driver="$3"
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
mkdir -p "$home/.pki/nssdb"
certutil -d "sql:$home/.pki/nssdb" -N --empty-password
certutil -d "sql:$home/.pki/nssdb" -A -t "C,," -n misdirect -i "$ca"
echo "127.0.0.1 $(printf '%s\n' $resolve | grep -v -- '--resolve' | cut -d: -f1 | tr '\n' ' ')" > "$home/hosts"
HOME="$home" unshare --mount --map-root-user sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$home/hosts" \
  chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$home/profile" \
  --virtual-time-budget=10000 --dump-dom "$driver" >/dev/null 2>&1
