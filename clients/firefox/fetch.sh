#!/bin/sh
# Sends headless Firefox ESR through a client scenario, as a client under test for misdirect, by
# the client profile clients/firefox.yaml:
#
#   misdirect run --client clients/firefox.yaml
#
# Firefox trusts the CA file given first in the NSS database of a throwaway profile (its own
# store) and loads the driver page, in its synchronous form: --screenshot waits for the page's
# load event, which waits for every fetch. It resolves the scenario's names (from curl's
# --resolve options, given second) as it resolves any name, through the system resolver, in a
# mount namespace of its own whose /etc/hosts maps them to 127.0.0.1 (unshare; the machine's
# file is left alone): a name it resolves otherwise (network.dns.localDomains) it never
# coalesces onto another name's connection, as it does with names that share an address.
# Needs the Debian packages firefox-esr and libnss3-tools.
set -eu
ca="$1"
resolve="$2"
driver="$3"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
names=$(printf '%s\n' $resolve | grep -v -- '--resolve' | cut -d: -f1 | tr '\n' ' ')
certutil -d "sql:$profile" -N --empty-password
certutil -d "sql:$profile" -A -t "C,," -n misdirect -i "$ca"
cat > "$profile/user.js" <<PREFS
user_pref("network.dns.disableIPv6", true);
user_pref("network.http.http3.enable", false);
user_pref("network.proxy.type", 0);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.enabled", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
PREFS
echo "127.0.0.1 $names" > "$profile/hosts"
HOME="$profile" MOZ_HEADLESS=1 unshare --mount --map-root-user sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$profile/hosts" firefox-esr --headless --no-remote --profile "$profile" \
  --screenshot "$profile/page.png" "$driver&sync=1" >/dev/null 2>&1
