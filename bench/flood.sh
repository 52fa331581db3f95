#!/usr/bin/env bash
# Side-by-side flood benchmark: Debian's knockd and Doorward's knockd, each
# in its own throwaway pair of network namespaces, under the same spoofed-
# source SYN flood to the first knock port while legitimate clients knock.
#
# Usage: sudo bench/flood.sh [-d SECONDS] [-n KNOCKS] [-r PPS] [-s PREFIX]
#                            [-m packet|raw] [-o "knockd doorward"] [-k]
#   -d  flood duration in seconds (default 10)
#   -n  legitimate knocks during the flood, each from its own address (default 5)
#   -r  flood rate in packets/s, 0 = as fast as one core can send (default
#       0); a comma-separated list runs every daemon at each rate in turn
#   -s  prefix the spoofed source addresses are drawn from (default 198.18.0.0/15)
#   -m  knock-flood mode (default packet: AF_PACKET frames)
#   -o  which daemons, in order (default "knockd doorward")
#   -k  keep the work directory (configs, logs, raw numbers) and print its path
# The same settings can be given as DURATION, KNOCKS, RATE, PREFIX, MODE,
# DAEMONS and KEEP=1 in the environment. `make bench` runs it with defaults.
#
# Per daemon it creates namespaces dwbench-PID-NAME-{srv,cli} joined by a
# veth pair (server 10.234.I.1, flooder 10.234.I.2, legitimate clients
# 10.234.I.101...), starts the daemon in the server namespace with the same
# door (7000,8000,9000, tcpflags=syn, a start_command that appends
# "$(date +%s.%N) %IP%" to a file), floods 7000 from the client namespace
# with knock-flood, and has `knock-flood knock` knock from the legitimate
# addresses, spread evenly over the flood. After the flood it waits until
# the daemon goes idle (at most DRAIN seconds, default 15), then measures.
# See docs/benchmark.md for what each column means and how it is measured.
#
# Traffic never leaves the namespaces the script creates; the host's
# interfaces, firewall and sysctls are not touched. The namespaces and
# everything running in them are deleted on exit, also on error or Ctrl-C.
# The flood is bounded in time (-duration) and count (2M packets/s x
# duration) and stops by itself.
set -euo pipefail

DURATION=${DURATION:-10}
KNOCKS=${KNOCKS:-5}
RATE=${RATE:-0}
PREFIX=${PREFIX:-198.18.0.0/15}
MODE=${MODE:-packet}
DAEMONS=${DAEMONS:-knockd doorward}
KEEP=${KEEP:-0}
DRAIN=${DRAIN:-15}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while getopts "d:n:r:s:m:o:kh" opt; do
	case $opt in
	d) DURATION=$OPTARG ;;
	n) KNOCKS=$OPTARG ;;
	r) RATE=$OPTARG ;;
	s) PREFIX=$OPTARG ;;
	m) MODE=$OPTARG ;;
	o) DAEMONS=$OPTARG ;;
	k) KEEP=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
(($# == 0)) || usage

die() {
	echo "flood.sh: $*" >&2
	exit 1
}
[[ $DURATION =~ ^[0-9]+$ ]] && ((DURATION >= 1 && DURATION <= 60)) || die "-d must be 1..60 seconds"
[[ $KNOCKS =~ ^[0-9]+$ ]] && ((KNOCKS >= 1 && KNOCKS <= 50)) || die "-n must be 1..50"
[[ $RATE =~ ^[0-9]+(,[0-9]+)*$ ]] || die "-r must be packets/s (0 = max), or a comma-separated list"
[[ $DRAIN =~ ^[0-9]+$ ]] || die "DRAIN must be a number of seconds"
for d in $DAEMONS; do
	[[ $d == knockd || $d == doorward ]] || die "unknown daemon $d (knockd or doorward)"
done
[[ $(id -u) -eq 0 ]] || die "must run as root (it creates network namespaces)"
command -v ip >/dev/null || die "ip (iproute2) not found"
command -v go >/dev/null || die "go not found"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KNOCKD_DEBIAN=/usr/sbin/knockd
if [[ " $DAEMONS " == *" knockd "* && ! -x $KNOCKD_DEBIAN ]]; then
	echo "installing Debian's knockd..."
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends knockd >/dev/null
	[[ -x $KNOCKD_DEBIAN ]] || die "$KNOCKD_DEBIAN still missing after apt-get install knockd"
fi

work=$(mktemp -d /tmp/doorward-bench.XXXXXX)
tag=dwbench-$$
namespaces=()
pids=()
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	for ns in "${namespaces[@]}"; do
		[[ -e /run/netns/$ns ]] || continue
		# Everything still running inside our namespaces is ours (a daemon,
		# a command it spawned, a flood).
		for _ in 1 2 3; do
			local left
			left=$(ip netns pids "$ns" 2>/dev/null || true)
			[[ -z $left ]] && break
			kill -KILL $left 2>/dev/null || true
			sleep 0.1
		done
		ip netns del "$ns" 2>/dev/null || echo "flood.sh: could not delete namespace $ns" >&2
	done
	if ((KEEP)); then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'echo "flood.sh: interrupted" >&2; exit 130' INT TERM

echo "building knockd and knock-flood (CGO_ENABLED=0)..."
(cd "$root" && CGO_ENABLED=0 go build -buildvcs=false -o "$work/bin/" ./cmd/knockd ./bench/knock-flood) || die "build failed"
FLOOD=$work/bin/knock-flood
TICK=$(getconf CLK_TCK)

now() { date +%s.%N; }
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; } # utime+stime after the comm field
rx_packets() { ip -n "$1" -s -j link show dev "$2" | sed -n 's/.*"rx":{"bytes":[0-9]*,"packets":\([0-9]*\).*/\1/p'; }
rx_dropped() { ip -n "$1" -s -j link show dev "$2" | sed -n 's/.*"rx":{[^}]*"dropped":\([0-9]*\).*/\1/p'; }
kv() { sed -n "s/.*\b$2=\([0-9.]*\).*/\1/p" "$1" | tail -1; } # value of key=number in a file

# bench NAME INDEX RATE: one daemon, one namespace pair, one flood rate.
# Appends a result row to $work/results.
bench() {
	local name=$1 idx=$2 rate=$3
	local dir=$work/$idx-$name
	local srv=$tag-$idx-$name-srv cli=$tag-$idx-$name-cli
	local sif=dwb${idx}s cif=dwb${idx}c
	local net=10.234.$idx
	local srvip=$net.1
	mkdir -p "$dir/state"
	: >"$dir/opened"
	: >"$dir/knocks"

	echo "== $name: namespaces $srv / $cli"
	namespaces+=("$srv" "$cli")
	ip netns add "$srv"
	ip netns add "$cli"
	ip -n "$srv" link set lo up
	ip -n "$cli" link set lo up
	ip link add "$sif" netns "$srv" type veth peer name "$cif" netns "$cli"
	ip -n "$srv" addr add "$srvip/24" dev "$sif"
	ip -n "$cli" addr add "$net.2/24" dev "$cif"
	local k
	for ((k = 1; k <= KNOCKS; k++)); do
		ip -n "$cli" addr add "$net.$((100 + k))/24" dev "$cif"
	done
	ip -n "$srv" link set "$sif" up
	ip -n "$cli" link set "$cif" up

	{
		printf '[options]\n\tLogFile = %s\n\n' "$dir/daemon.log"
		printf '[bench]\n\tsequence      = 7000,8000,9000\n\tseq_timeout   = 10\n\ttcpflags      = syn\n'
		printf '\tstart_command = echo "$(date +%%s.%%N) %%IP%%" >> %s\n' "$dir/opened"
		printf '\tcmd_timeout   = 3600\n'
	} >"$dir/knockd.conf"

	local cmd
	case $name in
	knockd) cmd=("$KNOCKD_DEBIAN" -i "$sif" -c "$dir/knockd.conf") ;;
	doorward) cmd=("$work/bin/knockd" -i "$sif" -c "$dir/knockd.conf" --state-dir "$dir/state") ;;
	esac
	# `ip netns exec` execs the daemon: $! is the daemon's own pid.
	ip netns exec "$srv" "${cmd[@]}" >"$dir/stdout" 2>&1 &
	local dpid=$!
	pids+=("$dpid")
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q "starting up, listening on $sif" "$dir/daemon.log" 2>/dev/null && break
		kill -0 "$dpid" 2>/dev/null || die "$name exited at start-up: $(cat "$dir/stdout" "$dir/daemon.log" 2>/dev/null)"
		sleep 0.1
	done
	((i < 100)) || die "$name did not log its start-up line within 10 s"
	sleep 0.3

	# Kernel counters of the capture socket. Ours reads (and so resets)
	# PACKET_STATISTICS itself and logs the totals at shutdown; for knockd,
	# which never reads them, knock-flood reads them from outside
	# (pidfd_getfd). Reading here zeroes them before the flood.
	local ours_logs_stats=0
	if [[ $name == doorward ]] && grep -q "packets passed the filter" "$work/bin/knockd"; then
		ours_logs_stats=1
	else
		"$FLOOD" sockstats "$dpid" >/dev/null 2>"$dir/sockstats.err" ||
			echo "   cannot read $name's socket statistics: $(cat "$dir/sockstats.err")"
	fi
	local rx0 rxd0
	rx0=$(rx_packets "$srv" "$sif")
	rxd0=$(rx_dropped "$srv" "$sif")

	echo "   flooding $srvip:7000 for ${DURATION}s (rate $rate, 0 = max) while $KNOCKS clients knock..."
	local t0
	t0=$(now)
	timeout $((DURATION + 10)) ip netns exec "$cli" "$FLOOD" -mode "$MODE" -dst "$srvip" -ports 7000 \
		-duration "${DURATION}s" -count $((2000000 * DURATION)) -rate "$rate" -src-prefix "$PREFIX" \
		>"$dir/flood.out" 2>&1 &
	local fpid=$!
	pids+=("$fpid")
	for ((k = 1; k <= KNOCKS; k++)); do
		# The k-th knock at (k - 1/2)/KNOCKS of the flood.
		local at wait
		at=$(awk -v t0="$t0" -v d="$DURATION" -v k="$k" -v n="$KNOCKS" 'BEGIN { printf "%.3f", t0 + d * (k - 0.5) / n }')
		wait=$(awk -v at="$at" -v now="$(now)" 'BEGIN { w = at - now; printf "%.3f", (w > 0 ? w : 0) }')
		sleep "$wait"
		timeout 5 ip netns exec "$cli" "$FLOOD" knock -src "$net.$((100 + k))" -dst "$srvip" 7000 8000 9000 \
			>>"$dir/knocks" 2>>"$dir/knocks.err" || echo "   knock $k failed: $(tail -1 "$dir/knocks.err")"
	done
	wait "$fpid" || die "knock-flood failed: $(cat "$dir/flood.out")"
	cat "$dir/flood.out" | head -1 | sed 's/^/   /'

	# Drain: wait until the daemon has worked through what it captured
	# (less than 5% of a core over half a second), at most DRAIN seconds.
	local c0 c1 idle=0 drained=$DRAIN
	c0=$(cpu_ticks "$dpid")
	for ((i = 1; i <= DRAIN * 2; i++)); do
		sleep 0.5
		c1=$(cpu_ticks "$dpid")
		if (((c1 - c0) * 100 <= TICK * 5 / 2)); then
			idle=$((idle + 1))
			((idle >= 2)) && { drained=$(awk -v i="$i" 'BEGIN { printf "%.1f", i / 2 }'); break; }
		else
			idle=0
		fi
		c0=$c1
	done
	echo "   drained after ${drained}s"
	sleep 0.5

	# Measure before stopping: CPU and peak RSS vanish with the process.
	local ticks hwm rx1 rxd1 passed=- dropped=- selfcount=-
	ticks=$(cpu_ticks "$dpid")
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$dpid/status")
	rx1=$(rx_packets "$srv" "$sif")
	rxd1=$(rx_dropped "$srv" "$sif")
	if ((!ours_logs_stats)); then
		if "$FLOOD" sockstats "$dpid" >"$dir/sockstats" 2>"$dir/sockstats.err"; then
			passed=$(kv "$dir/sockstats" packets)
			dropped=$(kv "$dir/sockstats" drops)
		else
			echo "   cannot read $name's socket statistics: $(cat "$dir/sockstats.err")"
		fi
	fi
	kill -TERM "$dpid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$dpid" 2>/dev/null || true
	wait "$dpid" 2>/dev/null || true
	if ((ours_logs_stats)); then
		passed=$(sed -n 's/.*capture [^ ]*: \([0-9]*\) packets passed the filter, \([0-9]*\) dropped by the kernel.*/\1/p' "$dir/daemon.log" | awk '{ s += $1 } END { print s + 0 }')
		dropped=$(sed -n 's/.*capture [^ ]*: \([0-9]*\) packets passed the filter, \([0-9]*\) dropped by the kernel.*/\2/p' "$dir/daemon.log" | awk '{ s += $1 } END { print s + 0 }')
		selfcount=$(sed -n 's/.*\] \([0-9]*\) packets processed$/\1/p' "$dir/daemon.log" | tail -1)
		selfcount=${selfcount:--}
	fi

	# Latency: first command-file line for each legitimate address minus
	# the send time of that client's last knock.
	local sent opened lat
	sent=$(kv "$dir/flood.out" sent)
	opened=$(awk 'NR == FNR { split($1, a, "="); split($2, b, "="); hit[a[2]] = b[2]; next }
		($2 in hit) && !seen[$2]++ { n++ } END { print n + 0 }' "$dir/knocks" "$dir/opened")
	lat=$(awk 'NR == FNR { split($1, a, "="); split($2, b, "="); hit[a[2]] = b[2]; next }
		($2 in hit) && !seen[$2]++ { printf "%.3f\n", ($1 - hit[$2]) * 1000 }' "$dir/knocks" "$dir/opened" | sort -g |
		awk '{ v[++n] = $1 } END {
			if (!n) { print "- -"; exit }
			med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			r = int(0.99 * n); if (r < 0.99 * n) r++
			printf "%.1f %.1f\n", med, v[r] }')
	local logsize
	logsize=$(cat "$dir/daemon.log" "$dir/stdout" 2>/dev/null | wc -c)

	# name rate offered rx_veth rx_dropped passed dropped processed self cpu_s rss_MiB opened N lat_med lat_p99 log_bytes flood_pps drained
	awk -v name="$name" -v rate="$rate" -v sent="$sent" -v n="$KNOCKS" -v rx=$((rx1 - rx0)) -v rxd=$((rxd1 - rxd0)) \
		-v passed="$passed" -v dropped="$dropped" -v self="$selfcount" -v ticks="$ticks" -v tick="$TICK" \
		-v hwm="$hwm" -v opened="$opened" -v lat="$lat" -v logsize="$logsize" -v pps="$(kv "$dir/flood.out" pps)" \
		-v drained="$drained" 'BEGIN {
			split(lat, l, " ")
			processed = (passed == "-") ? "-" : passed - dropped
			printf "%s %d %d %d %s %s %s %s %.2f %.1f %d %d %s %s %d %s %s %s\n", name, sent + 3 * n, rx, rxd,
				passed, dropped, processed, self, ticks / tick, hwm / 1024, opened, n, l[1], l[2], logsize, pps, drained, rate
		}' >>"$work/results"

	# Free this pair before the next daemon runs.
	for ns in "$srv" "$cli"; do
		left=$(ip netns pids "$ns" 2>/dev/null || true)
		[[ -n $left ]] && kill -KILL $left 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
}

echo "flood: ${DURATION}s of TCP SYNs to port 7000 from random sources in $PREFIX, rate ${RATE} (0 = max), mode $MODE; $KNOCKS legitimate knocks"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
idx=0
for rate in ${RATE//,/ }; do
	for d in $DAEMONS; do
		bench "$d" "$idx" "$rate"
		idx=$((idx + 1))
	done
done

echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r), flood ${DURATION}s at rate ${RATE} (0 = max), load average at start $load0"
awk 'BEGIN {
	printf "%-9s %8s %9s %9s %9s %9s %6s %12s %6s %13s %10s %10s %9s %10s\n", "daemon", "rate", "offered", "rx_veth", "processed", "dropped", "cpu_s", "peak_rss_MiB", "opened", "lat_median_ms", "lat_p99_ms", "us/packet", "log_KiB", "flood_pps"
}
{
	us = ($7 == "-" || $7 == 0) ? "-" : sprintf("%.2f", $9 * 1e6 / $7)
	printf "%-9s %8s %9d %9d %9s %9s %6.2f %12.1f %6s %13s %10s %10s %9.1f %10s\n", $1, ($18 == 0 ? "max" : $18), $2, $3, $7, $6, $9, $10, $11 "/" $12, $13, $14, us, $15 / 1024, $16
}' "$work/results"
echo
echo "offered: flood packets sent + 3 per legitimate knock; rx_veth: packets the server's veth received;"
echo "processed: packets delivered to the daemon's capture socket minus those the kernel dropped (ring full), PACKET_STATISTICS;"
echo "us/packet: the daemon's CPU time (user+system) per processed packet; log_KiB: log file plus stdout/stderr."
awk '$8 != "-" { printf "%s at rate %s counted %s packets processed itself (its shutdown log).\n", $1, ($18 == 0 ? "max" : $18), $8 }' "$work/results"
cp "$work/results" "$work/results.txt"
