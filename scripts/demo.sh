#!/usr/bin/env bash
# Doorward demo: one port knock, end to end, inside two throwaway network
# namespaces (doorward-demo-srv and doorward-demo-cli joined by a veth pair).
# The server has an iptables default-deny INPUT policy, a TCP service on
# 2222 and Doorward's knockd running examples/knockd-iptables.conf; the
# client knocks 7000 8000 9000 with Doorward's knock.
#
# With --nft the server runs examples/nftables-sets.nft instead (a
# default-deny nftables ruleset whose input chain accepts @doorward4) and
# knockd runs examples/knockd-nftset.conf: the knock adds the client to the
# set natively, with cmd_timeout as the element's kernel timeout.
#
# Usage: sudo scripts/demo.sh [--nft] [BINDIR]
#   BINDIR holds prebuilt knockd and knock; without it both are built with
#   CGO_ENABLED=0 into a temporary directory.
#
# Nothing outside the two namespaces is changed; they are deleted on exit,
# also on error or Ctrl-C. Exit status 0 means every step behaved as
# expected.
set -euo pipefail

SRV=doorward-demo-srv
CLI=doorward-demo-cli
SRV_IF=dwdemo-s
CLI_IF=dwdemo-c
SRV_IP=10.232.0.1
CLI_IP=10.232.0.2
PORT=2222

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nft=
if [[ ${1:-} == --nft ]]; then
	nft=1
	shift
fi
conf=$root/examples/knockd-iptables.conf
fw=iptables
if [[ -n $nft ]]; then
	conf=$root/examples/knockd-nftset.conf
	fw=nft
fi

die() {
	echo "demo: FAILED: $*" >&2
	exit 1
}

[[ $(id -u) -eq 0 ]] || die "must be run as root (it creates network namespaces)"
for tool in ip "$fw" nc; do
	command -v "$tool" >/dev/null || die "$tool not found"
done
for ns in "$SRV" "$CLI"; do
	if ip netns list | grep -qw "^$ns"; then
		die "namespace $ns already exists (another demo running, or a leftover: ip netns del $ns)"
	fi
done

work=$(mktemp -d /tmp/doorward-demo.XXXXXX)
knockd_pid=
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [[ -n $knockd_pid ]] && kill -0 "$knockd_pid" 2>/dev/null; then
		kill -TERM "$knockd_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$knockd_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$knockd_pid" 2>/dev/null || true
	fi
	for ns in "$SRV" "$CLI"; do
		if [[ -e /run/netns/$ns ]]; then
			# Everything still running inside our namespaces is ours.
			for pid in $(ip netns pids "$ns" 2>/dev/null); do
				kill -KILL "$pid" 2>/dev/null || true
			done
			ip netns del "$ns" 2>/dev/null || true
		fi
	done
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT TERM

bindir=${1:-}
if [[ -z $bindir ]]; then
	command -v go >/dev/null || die "go not found (or pass a directory holding knockd and knock)"
	echo "building knockd and knock..."
	(cd "$root" && CGO_ENABLED=0 go build -buildvcs=false -o "$work/" ./cmd/knockd ./cmd/knock) || die "build failed"
	bindir=$work
fi
for b in knockd knock; do
	[[ -x $bindir/$b ]] || die "$bindir/$b not found"
done

in_srv() { ip netns exec "$SRV" "$@"; }
in_cli() { ip netns exec "$CLI" "$@"; }

# Namespaces, veth, addresses.
ip netns add "$SRV"
ip netns add "$CLI"
ip link add "$SRV_IF" netns "$SRV" type veth peer name "$CLI_IF" netns "$CLI"
ip -n "$SRV" addr add "$SRV_IP/24" dev "$SRV_IF"
ip -n "$CLI" addr add "$CLI_IP/24" dev "$CLI_IF"
for ns in "$SRV" "$CLI"; do ip -n "$ns" link set lo up; done
ip -n "$SRV" link set "$SRV_IF" up
ip -n "$CLI" link set "$CLI_IF" up

# Server firewall: default deny, loopback and established connections only
# (and, with --nft, what is in the sets).
if [[ -n $nft ]]; then
	in_srv nft -f "$root/examples/nftables-sets.nft"
else
	in_srv iptables -w -A INPUT -i lo -j ACCEPT
	in_srv iptables -w -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	in_srv iptables -w -P INPUT DROP
fi

# The guarded service.
# Background processes: `ip netns exec` directly, not a shell function, so
# that $! is the program itself (ip execs it) and signals reach it.
ip netns exec "$SRV" nc -lk "$PORT" >/dev/null 2>&1 &
disown # killed with the namespace on exit; no job notice
for _ in $(seq 50); do in_srv nc -z -w1 "$SRV_IP" "$PORT" 2>/dev/null && break; sleep 0.1; done
in_srv nc -z -w1 "$SRV_IP" "$PORT" || die "service on $PORT did not start"

# knockd.
log=$work/knockd.log
ip netns exec "$SRV" "$bindir/knockd" -i "$SRV_IF" -c "$conf" -v --state-dir "$work/state" >"$log" 2>&1 &
knockd_pid=$!
for _ in $(seq 100); do grep -q "starting up" "$log" && break; sleep 0.1; done
grep -q "starting up" "$log" || { cat "$log" >&2; die "knockd did not start"; }

shown=0
show_log() {
	local n
	n=$(wc -l <"$log")
	if ((n > shown)); then
		sed -n "$((shown + 1)),${n}p" "$log" | sed 's/^/     knockd: /'
		shown=$n
	fi
}
reachable() { in_cli nc -z -w1 "$SRV_IP" "$PORT" 2>/dev/null; }
if [[ -n $nft ]]; then
	# The set's elements, one a line ("10.232.0.2 timeout 3s expires 2s…").
	rules() { in_srv nft list set inet filter doorward4 | sed -n 's/^[[:space:]]*elements = { *\(.*\) *}$/\1/p'; }
else
	rules() { in_srv iptables -w -S INPUT | grep -- "--dport $PORT" || true; }
fi

echo "Doorward demo: server $SRV_IP ($SRV), client $CLI_IP ($CLI), config ${conf#"$root"/}"
show_log

reachable && die "step 1: the service is reachable before knocking"
[[ -z $(rules) ]] || die "step 1: a rule (or set element) for port $PORT exists before knocking"
echo "1. service from client: closed"

echo "2. knocking 7000 8000 9000 with knock"
in_cli "$bindir/knock" -v "$SRV_IP" 7000 8000 9000 | sed 's/^/     knock: /'
for _ in $(seq 30); do [[ -n $(rules) ]] && break; sleep 0.1; done
show_log
grep -q "$CLI_IP: door2222: OPEN SESAME" "$log" || die "step 2: knockd did not log OPEN SESAME"

r=$(rules)
if [[ -n $nft ]]; then
	[[ -n $r ]] || die "step 3: no element in set doorward4"
	[[ $r == "$CLI_IP timeout "* && $r != *,* ]] || die "step 3: expected one element for $CLI_IP with a timeout, got: $r"
	echo "3. $CLI_IP in nftables set inet filter doorward4 (the kernel removes it at its timeout)"
	echo "     nft: $r"
else
	[[ -n $r ]] || die "step 3: no firewall rule for port $PORT"
	[[ $(wc -l <<<"$r") -eq 1 && $r == *"-s $CLI_IP/32 "* ]] || die "step 3: expected one rule for $CLI_IP only, got: $r"
	echo "3. firewall rule for $CLI_IP"
	echo "     iptables: $r"
fi

reachable || die "step 4: the service is not reachable after the knock"
echo "4. service from client: open"

# door2222's cmd_timeout (the first one in the file).
wait_s=$(awk -F= 'tolower($1) ~ /^[ \t]*cmd_timeout[ \t]*$/ { gsub(/[ \t]/, "", $2); print $2; exit }' "$conf")
[[ $wait_s =~ ^[0-9]+$ ]] || die "cannot read cmd_timeout from $conf"
echo "5. waiting $wait_s s for the door to close"
for _ in $(seq $(((wait_s + 5) * 10))); do [[ -z $(rules) ]] && break; sleep 0.1; done
show_log
[[ -z $(rules) ]] || die "step 5: the rule (or element) is still there $((wait_s + 5)) s after the knock"
if [[ -n $nft ]]; then
	grep -q "door2222: deleting $CLI_IP from nftables set inet filter doorward4" "$log" || die "step 5: the delete was not logged"
else
	grep -q "door2222: running command: iptables -D INPUT -s $CLI_IP " "$log" || die "step 5: the stop command was not logged"
fi

reachable && die "step 6: the service is still reachable after the stop command"
echo "6. service from client: closed again"

kill -TERM "$knockd_pid"
status=0
wait "$knockd_pid" || status=$?
knockd_pid=
((status == 0)) || die "knockd exited with status $status after SIGTERM"
show_log
if grep -qE "non-zero status|command failed|nftables failed" "$log"; then
	die "knockd reported a failing command"
fi
echo "demo: OK"
