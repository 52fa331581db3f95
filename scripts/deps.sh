#!/usr/bin/env bash
# Install the Debian packages a purpose needs, when they are missing: the
# one list that `.ci/run`, `make test`, `make demo` and `make deb-test`
# share, so a fresh Debian machine needs only `sudo make test`.
#
# Usage: scripts/deps.sh [--list] PURPOSE...
#   PURPOSE  test (the end-to-end tests' tools), demo (make demo),
#            deb (make deb-test: lintian, dpkg)
#   --list   print the packages of the purposes and exit
#
# As root, missing packages are installed with apt-get. As anyone else the
# apt-get line to run is printed and the exit status is 1: nothing is
# installed behind a normal user's back, and a test run does not go on to
# skip (or, under CI=true, fail) for want of a tool.
set -euo pipefail

declare -A purpose=(
	[test]="iproute2 iptables nftables knockd sendip netcat-openbsd telnet tcpdump hping3 make systemd util-linux fwknop-client fwknop-server redis-server redis-sentinel openssl dash"
	[demo]="iproute2 iptables nftables netcat-openbsd"
	[deb]="dpkg lintian man-db"
)

list=0
if [[ ${1:-} == --list ]]; then
	list=1
	shift
fi
(($#)) || { echo "usage: $0 [--list] $(tr ' ' '|' <<<"${!purpose[*]}")..." >&2; exit 2; }

want=()
for p in "$@"; do
	[[ -n ${purpose[$p]:-} ]] || { echo "deps: unknown purpose $p (one of: ${!purpose[*]})" >&2; exit 2; }
	for pkg in ${purpose[$p]}; do
		[[ " ${want[*]} " == *" $pkg "* ]] || want+=("$pkg")
	done
done
if ((list)); then
	echo "${want[*]}"
	exit 0
fi

command -v dpkg-query >/dev/null || {
	echo "deps: not a Debian system (no dpkg-query); install by hand: ${want[*]}" >&2
	exit 1
}
missing=()
for pkg in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]})) || exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "deps: missing Debian packages for $*: ${missing[*]}" >&2
	echo "deps: run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
