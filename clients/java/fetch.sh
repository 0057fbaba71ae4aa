#!/bin/sh
# Runs clients/java/Fetch.java (Java's java.net.http.HttpClient) as a client under test for the
# client profile clients/java.yaml, with the case's names (from curl's --resolve options, given
# second) mapped to 127.0.0.1 through a hosts file of the JVM's own (jdk.net.hosts.file), so that
# the system resolver is left alone. The program is compiled once into a cache folder and again
# only when the source changes (a JVM compiling it at every start takes seconds). Needs a JDK 11
# or later (Debian default-jdk-headless).
set -eu
ca="$1"
resolve="$2"
protocol="$3"
shift 3
hosts=$(mktemp)
trap 'rm -f "$hosts"' EXIT
printf '%s\n' $resolve | grep -v -- '--resolve' | cut -d: -f1 | sed 's/^/127.0.0.1 /' > "$hosts"
source="$(dirname "$0")/Fetch.java"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/misdirect/java"
if [ ! -f "$cache/Fetch.class" ] || [ "$source" -nt "$cache/Fetch.class" ]; then
  mkdir -p "$cache"
  # Built beside the cache and renamed into it, so that cases running at once never see half a
  # class file.
  build=$(mktemp -d "$cache/build.XXXXXX")
  javac -d "$build" "$source"
  mv -f "$build/Fetch.class" "$cache/Fetch.class"
  rm -rf "$build"
fi
java -Djdk.net.hosts.file="$hosts" -cp "$cache" Fetch "$ca" "$protocol" "$@"
