#!/bin/sh
# Runs nghttp (Debian nghttp2-client) as a client under test for the client profile
# clients/nghttp.yaml. nghttp resolves names with the system resolver and has no option to map
# a name to an address, so it runs in a mount namespace of its own (unshare, as an unprivileged
# user too) in which a hosts file maps the case's names (from curl's --resolve options, given
# second) to 127.0.0.1: the machine's /etc/hosts is left alone. The CA given first is the one
# OpenSSL is told to trust (SSL_CERT_FILE).
set -eu
ca="$1"
resolve="$2"
shift 2
hosts=$(mktemp)
trap 'rm -f "$hosts"' EXIT
echo "127.0.0.1 $(printf '%s\n' $resolve | grep -v -- '--resolve' | cut -d: -f1 | tr '\n' ' ')" > "$hosts"
SSL_CERT_FILE="$ca" unshare --mount --map-root-user \
  sh -c 'mount --bind "$0" /etc/hosts && exec nghttp --no-content-length --null-out "$@"' "$hosts" "$@"
