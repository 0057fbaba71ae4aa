#!/bin/sh
# Runs clients/java/Fetch.java (Java's java.net.http.HttpClient) as a client under test for the
# client profile clients/java.yaml, with the case's names (from curl's --resolve options, given
# second) mapped to 127.0.0.1 through a hosts file of the JVM's own (jdk.net.hosts.file), so that
# the system resolver is left alone. Needs a JDK 11 or later (Debian default-jdk-headless).
set -eu
ca="$1"
resolve="$2"
protocol="$3"
shift 3
hosts=$(mktemp)
trap 'rm -f "$hosts"' EXIT
printf '%s\n' $resolve | grep -v -- '--resolve' | cut -d: -f1 | sed 's/^/127.0.0.1 /' > "$hosts"
exec java -Djdk.net.hosts.file="$hosts" "$(dirname "$0")/Fetch.java" "$ca" "$protocol" "$@"
