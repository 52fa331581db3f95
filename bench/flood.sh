#!/usr/bin/env bash
# Side-by-side flood benchmark, each daemon in its own throwaway pair of
# network namespaces under the same series of floods from spoofed sources
# while legitimate clients knock: for knockd sequences, Debian's knockd and
# Doorward's knockd under SYN floods to the first knock port; for fwknop,
# Debian's fwknopd and Doorward's knockd under floods of UDP datagrams of
# random base64 the length of an SPA packet to the SPA port.
#
# Usage: sudo bench/flood.sh [-f FLOODS] [-d SECONDS] [-n KNOCKS] [-r PPS]
#                            [-s PREFIX] [-g auto|trafgen|knock-flood]
#                            [-m packet|raw] [-o "knockd fwknopd doorward"]
#                            [-p "sequence fwknop"] [-k]
#   -f  floods per daemon (default 20)
#   -d  seconds per flood (default 3)
#   -n  legitimate knocks per flood, each from its own address (default 1;
#       floods x knocks at most 150)
#   -r  flood rate in packets/s, 0 = as fast as one core can send (default
#       0); a comma-separated list runs every daemon at each rate in turn
#   -s  prefix the spoofed source addresses are drawn from (default
#       0.0.0.0/0: the whole IPv4 address space)
#   -g  flood generator: trafgen (netsniff-ng), knock-flood (ours, in
#       bench/knock-flood), or auto = trafgen where installed (default)
#   -m  knock-flood's mode (default packet: AF_PACKET frames)
#   -o  which daemons, in order (default "knockd fwknopd doorward"); each
#       runs the protocols of -p it speaks: knockd sequence, fwknopd fwknop,
#       doorward both
#   -p  which floods, in order (default "sequence fwknop"): sequence = SYNs
#       to the first port of a knockd door, each knock 3 SYNs (knock-flood
#       knock); fwknop = random base64 to UDP port 62201, each knock one SPA
#       packet from the real fwknop client (Debian's fwknop-client)
#   -k  keep the work directory (configs, logs, captures, raw numbers)
# The same settings can be given as FLOODS, DURATION, KNOCKS, RATE, PREFIX,
# GENERATOR, MODE, DAEMONS, PROTOCOLS and KEEP=1 in the environment; GAP (default 0.5)
# is the pause between floods, DRAIN (default 15) the longest wait for the
# daemon to go idle after the last one. `make bench` runs the defaults.
#
# Per daemon it creates namespaces dwbench-PID-I-NAME-{srv,cli} joined by a
# veth pair (server 10.234.I.1, flooder 10.234.I.2, legitimate clients
# 10.234.I.101...), starts the daemon in the server namespace with the same
# door (7000,8000,9000, tcpflags=syn, a start_command that appends
# `date "+%s.%N %IP%"` to a file), and a tcpdump there that records the
# kernel's receive timestamp of the legitimate clients' SYNs to 9000 only.
# Then FLOODS times: a flood to 7000 from the client namespace for -d
# seconds, during which KNOCKS legitimate clients knock (each once, from
# its own address, spread evenly over the flood), and a GAP pause. After
# the last flood it waits until the daemon goes idle, then measures.
# The fwknop run is the same with an access.conf stanza (SOURCE ANY, HMAC
# SHA-256, a CMD_CYCLE_OPEN script that appends `date "+%s.%N $IP"`), the
# same fwknopd.conf and access.conf for both daemons, and each knock one
# `fwknop -A tcp/22 -a 10.234.I.101...` sent from 10.234.I.2: the allow-IP
# tells the knocks apart, the capture's order gives each its timestamp.
# See docs/benchmark.md for what each column means and how it is measured.
#
# Traffic never leaves the namespaces the script creates; the host's
# interfaces, firewall and sysctls are not touched (trafgen runs with
# --no-sock-mem and --notouch-irq). The namespaces and everything running
# in them are deleted on exit, also on error or Ctrl-C. Every flood is
# bounded in time (-d, enforced with timeout) and count (2M packets/s x -d)
# and stops by itself.
set -euo pipefail

FLOODS=${FLOODS:-20}
DURATION=${DURATION:-3}
KNOCKS=${KNOCKS:-1}
RATE=${RATE:-0}
PREFIX=${PREFIX:-0.0.0.0/0}
GENERATOR=${GENERATOR:-auto}
MODE=${MODE:-packet}
DAEMONS=${DAEMONS:-knockd fwknopd doorward}
PROTOCOLS=${PROTOCOLS:-sequence fwknop}
KEEP=${KEEP:-0}
GAP=${GAP:-0.5}
DRAIN=${DRAIN:-15}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while getopts "f:d:n:r:s:g:m:o:p:kh" opt; do
	case $opt in
	f) FLOODS=$OPTARG ;;
	d) DURATION=$OPTARG ;;
	n) KNOCKS=$OPTARG ;;
	r) RATE=$OPTARG ;;
	s) PREFIX=$OPTARG ;;
	g) GENERATOR=$OPTARG ;;
	m) MODE=$OPTARG ;;
	o) DAEMONS=$OPTARG ;;
	p) PROTOCOLS=$OPTARG ;;
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
[[ $FLOODS =~ ^[0-9]+$ ]] && ((FLOODS >= 1 && FLOODS <= 100)) || die "-f must be 1..100 floods"
[[ $DURATION =~ ^[0-9]+$ ]] && ((DURATION >= 1 && DURATION <= 60)) || die "-d must be 1..60 seconds"
[[ $KNOCKS =~ ^[0-9]+$ ]] && ((KNOCKS >= 1 && KNOCKS * FLOODS <= 150)) || die "-n must be ≥ 1 with floods x knocks ≤ 150"
[[ $RATE =~ ^[0-9]+(,[0-9]+)*$ ]] || die "-r must be packets/s (0 = max), or a comma-separated list"
[[ $GAP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "GAP must be a number of seconds"
[[ $DRAIN =~ ^[0-9]+$ ]] || die "DRAIN must be a number of seconds"
[[ $PREFIX =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]] &&
	((BASH_REMATCH[1] < 256 && BASH_REMATCH[2] < 256 && BASH_REMATCH[3] < 256 && BASH_REMATCH[4] < 256 && BASH_REMATCH[5] <= 32)) ||
	die "-s must be an IPv4 prefix such as 0.0.0.0/0"
for d in $DAEMONS; do
	[[ $d == knockd || $d == fwknopd || $d == doorward ]] || die "unknown daemon $d (knockd, fwknopd or doorward)"
done
for p in $PROTOCOLS; do
	[[ $p == sequence || $p == fwknop ]] || die "unknown protocol $p (sequence or fwknop)"
done
# speaks DAEMON PROTOCOL: whether the daemon runs that protocol's doors.
speaks() { [[ $1 == doorward || $1 == knockd && $2 == sequence || $1 == fwknopd && $2 == fwknop ]]; }
case $GENERATOR in
auto) GENERATOR=knock-flood && command -v trafgen >/dev/null && GENERATOR=trafgen ;;
trafgen) command -v trafgen >/dev/null || die "-g trafgen: trafgen not found (apt-get install netsniff-ng)" ;;
knock-flood) ;;
*) die "-g must be auto, trafgen or knock-flood" ;;
esac
[[ $(id -u) -eq 0 ]] || die "must run as root (it creates network namespaces)"
command -v ip >/dev/null || die "ip (iproute2) not found"
command -v go >/dev/null || die "go not found"
STAMPS=tcpdump
command -v tcpdump >/dev/null || STAMPS=client

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KNOCKD_DEBIAN=/usr/sbin/knockd
FWKNOPD_DEBIAN=/usr/sbin/fwknopd
# need_debian BINARY PACKAGE: install PACKAGE when BINARY is missing.
need_debian() {
	[[ -x $1 ]] && return
	echo "installing Debian's $2..."
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
	[[ -x $1 ]] || die "$1 still missing after apt-get install $2"
}
[[ " $DAEMONS " == *" knockd "* && " $PROTOCOLS " == *" sequence "* ]] && need_debian "$KNOCKD_DEBIAN" knockd
[[ " $DAEMONS " == *" fwknopd "* && " $PROTOCOLS " == *" fwknop "* ]] && need_debian "$FWKNOPD_DEBIAN" fwknop-server
[[ " $PROTOCOLS " == *" fwknop "* ]] && need_debian /usr/bin/fwknop fwknop-client
# The fwknop floods' SPA port and payload length: that of the packet the
# legitimate client sends (fwknop -A tcp/22 -a IPv4, HMAC SHA-256).
SPA_PORT=62201
SPA_LEN=204

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
		# a command it spawned, a flood, tcpdump).
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
# machine_ticks: "busy softirq" over all cores from /proc/stat's cpu line
# (busy = user nice system irq softirq steal; guest time is inside user).
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $8; exit }' /proc/stat; }
rx_packets() { ip -n "$1" -s -j link show dev "$2" | sed -n 's/.*"rx":{"bytes":[0-9]*,"packets":\([0-9]*\).*/\1/p'; }
mac_of() { ip -n "$1" -j link show dev "$2" | sed -n 's/.*"address":"\([0-9a-f:]*\)".*/\1/p'; }
kv() { sed -n "s/.*\b$2=\([0-9.]*\).*/\1/p" "$1" | tail -1; } # value of key=number in a file
# snmp NS: "ip_in ip_hdr_err ip_addr_err tcp_in tcp_csum_err" of a namespace.
snmp() {
	ip netns exec "$1" cat /proc/net/snmp | awk '
		$1 == "Ip:" && !ih { for (i = 2; i <= NF; i++) ip[$i] = i; ih = 1; next }
		$1 == "Ip:" { a = $ip["InReceives"]; b = $ip["InHdrErrors"]; c = $ip["InAddrErrors"] }
		$1 == "Tcp:" && !th { for (i = 2; i <= NF; i++) tcp[$i] = i; th = 1; next }
		$1 == "Tcp:" { d = $tcp["InSegs"]; e = $tcp["InCsumErrors"] }
		END { print a, b, c, d, e }'
}

# trafgen_source_field PREFIX: trafgen's ipv4() source address setting
# for addresses uniform over PREFIX, one byte at a time: a whole-field
# drnd() draws from glibc's rand(), 31 bits, and would never set the top
# bit (only 0.0.0.0/1); a byte-wide drnd() covers 0..255.
trafgen_source_field() {
	local bits=${1#*/} out=() i o
	IFS=. read -r -a o <<<"${1%/*}"
	for i in 0 1 2 3; do
		local fixed=$((bits - 8 * i))
		((fixed >= 8)) && continue
		((fixed < 0)) && fixed=0
		o[i]=$((o[i] & (0xff << (8 - fixed)) & 0xff))
		if ((fixed == 0)); then
			out+=("sa[$i]=drnd()")
		else
			out+=("sa[$i]=drnd(${o[i]}, $((o[i] | (0xff >> fixed))))")
		fi
	done
	local IFS=.
	out=("sa=${o[*]}" "${out[@]}")
	IFS=,
	echo "${out[*]}"
}

# probe_overhead: how long the start command's own probe takes before it
# reads the clock, started the way Doorward starts a command (Go's os/exec,
# /bin/sh -c, the shell exec'ing date(1)): `knock-flood probe`, 20 times.
probe_overhead() {
	local out
	out=$("$FLOOD" probe -n 20) || die "knock-flood probe failed"
	echo "median $(kv <(echo "$out") median_ms) ms, max $(kv <(echo "$out") max_ms) ms"
}

# own_latency LOG: "count p50 p99 max" (ms) from the last
# "knock-to-command latency: N start commands, p50 D, p99 D, max D" line of
# Doorward's log, the durations as Go prints them (852µs, 1.235ms, 2s).
own_latency() {
	sed -n 's/.*knock-to-command latency: \([0-9]*\) start commands, p50 \([^,]*\), p99 \([^,]*\), max \(.*\)$/\1 \2 \3 \4/p' "$1" | tail -1 |
		awk 'function ms(d) {
				if (d ~ /[µu]s$/) return d / 1000
				if (d ~ /ns$/) return d / 1e6
				if (d ~ /ms$/) return d + 0
				if (d ~ /^[0-9.]+s$/) return d * 1000
				return "-"
			}
			{ printf "%d %s %s %s\n", $1, ms($2), ms($3), ms($4) }'
}

# flood_once DIR CLI CIF SRVIP RATE N PROTOCOL: the N-th bounded flood, in
# the background; its pid in $fpid, its output in DIR/flood.N.
flood_once() {
	local dir=$1 cli=$2 cif=$3 srvip=$4 rate=$5 out=$1/flood.$6
	local what=(-ports 7000)
	[[ $7 == fwknop ]] && what=(-proto udp -ports "$SPA_PORT" -payload-base64 "$SPA_LEN")
	if [[ $GENERATOR == trafgen ]]; then
		local pace=()
		((rate > 0)) && pace=(-b "${rate}pps")
		# -P1: one process, pinned to CPU 0. No -t/-b at max rate: the
		# TX_RING path. SIGINT after -d seconds makes it print its totals.
		timeout --preserve-status -s INT -k 3 "$DURATION" ip netns exec "$cli" trafgen -o "$cif" -c "$dir/trafgen.cfg" \
			-P1 -n $((2000000 * DURATION)) --no-sock-mem --notouch-irq "${pace[@]}" >"$out" 2>&1 &
	else
		timeout $((DURATION + 10)) ip netns exec "$cli" "$FLOOD" -mode "$MODE" -dst "$srvip" "${what[@]}" \
			-duration "${DURATION}s" -count $((2000000 * DURATION)) -rate "$rate" -src-prefix "$PREFIX" \
			>"$out" 2>&1 &
	fi
	fpid=$!
}

# flood_result FILE: "sent seconds" of one finished flood.
flood_result() {
	if [[ $GENERATOR == trafgen ]]; then
		# "  N packets outgoing" and "  S sec, U usec on CPU0 (N packets)"
		# (each after a carriage return).
		tr '\r' '\n' <"$1" | awk '/packets outgoing/ { n = $1 } /usec on CPU/ { s = $1 + $3 / 1e6 } END { print n + 0, s + 0 }'
	else
		echo "$(kv "$1" sent) $(kv "$1" elapsed_s)"
	fi
}

# bench NAME INDEX RATE PROTOCOL: one daemon, one namespace pair, one flood
# rate, FLOODS floods of one protocol. Appends a result row to
# $work/results.
bench() {
	local name=$1 idx=$2 rate=$3 proto=$4
	local dir=$work/$idx-$name
	local srv=$tag-$idx-$name-srv cli=$tag-$idx-$name-cli
	local sif=dwb${idx}s cif=dwb${idx}c
	local net=10.234.$idx
	local srvip=$net.1
	local clients=$((FLOODS * KNOCKS))
	mkdir -p "$dir/state"
	: >"$dir/opened"
	: >"$dir/knocks"

	echo "== $name ($proto): namespaces $srv / $cli"
	namespaces+=("$srv" "$cli")
	ip netns add "$srv"
	ip netns add "$cli"
	ip -n "$srv" link set lo up
	ip -n "$cli" link set lo up
	ip link add "$sif" netns "$srv" type veth peer name "$cif" netns "$cli"
	ip -n "$srv" addr add "$srvip/24" dev "$sif"
	ip -n "$cli" addr add "$net.2/24" dev "$cif"
	local k
	for ((k = 1; k <= clients; k++)); do
		ip -n "$cli" addr add "$net.$((100 + k))/24" dev "$cif"
	done
	ip -n "$srv" link set "$sif" up
	ip -n "$cli" link set "$cif" up

	local conf=$dir/knockd.conf per_knock=3
	if [[ $proto == sequence ]]; then
		{
			printf '[options]\n\tLogFile = %s\n\n' "$dir/daemon.log"
			printf '[bench]\n\tsequence      = 7000,8000,9000\n\tseq_timeout   = 10\n\ttcpflags      = syn\n'
			# The probe: the shell execs date(1) at once (no subshell), and
			# the format carries the address, so the first clock read after
			# the daemon spawns the command is date's.
			printf '\tstart_command = exec date "+%%s.%%N %%IP%%" >> %s\n' "$dir/opened"
			printf '\tcmd_timeout   = 3600\n'
		} >"$conf"
	else
		# One config for both daemons, fwknopd's own files. The command
		# cycle runs a script (fwknopd runs it without a shell) that
		# execs date(1) as the sequence door's start command does.
		conf=$dir/fwknopd.conf per_knock=1
		printf '#!/bin/sh\nexec date "+%%s.%%N $1" >>%s\n' "$dir/opened" >"$dir/opened.sh"
		chmod 755 "$dir/opened.sh"
		printf 'PCAP_INTF %s;\nPCAP_FILTER udp port %d;\nENABLE_PCAP_PROMISC N;\n' "$sif" "$SPA_PORT" >"$conf"
		printf 'SOURCE ANY\nKEY_BASE64 %s\nHMAC_KEY_BASE64 %s\nCMD_CYCLE_OPEN %s $IP\nCMD_CYCLE_CLOSE /bin/true\nCMD_CYCLE_TIMER 3600\n' \
			"$SPA_KEY" "$SPA_HMAC" "$dir/opened.sh" >"$dir/access.conf"
		chmod 600 "$conf" "$dir/access.conf" # else fwknopd warns
		: >"$dir/fwknoprc"
		chmod 600 "$dir/fwknoprc"
	fi
	if [[ $GENERATOR == trafgen ]]; then
		local l4
		if [[ $proto == sequence ]]; then
			# Valid Ethernet/IPv4/TCP SYNs: trafgen recomputes the IPv4 and
			# TCP checksums of every packet whose fields it randomizes.
			l4="tcp(sp=drnd(1024, 65535), dp=7000, seq=drnd(), syn, win=64240)"
		else
			# Random base64 of an SPA packet's length: drawn once, with the
			# first 4 characters counting through letters at run time so
			# that no two consecutive packets are alike. The UDP checksum
			# is 0, "none" in IPv4, valid whatever the payload.
			local b64
			b64=$(head -c $((SPA_LEN * 2)) /dev/urandom | base64 -w0 | tr -d '=' | cut -c 5-$SPA_LEN)
			l4="udp(sp=drnd(1024, 65535), dp=$SPA_PORT, csum=0), dinc(65, 90, 1), dinc(97, 122, 3), dinc(65, 90, 5), dinc(97, 122, 7), \"$b64\""
		fi
		printf '{ eth(da=%s, sa=%s), ipv4(%s, da=%s, ttl=64, df, id=drnd()), %s }\n' \
			"$(mac_of "$srv" "$sif")" "$(mac_of "$cli" "$cif")" "$(trafgen_source_field "$PREFIX")" "$srvip" "$l4" >"$dir/trafgen.cfg"
	fi

	local cmd ready=$dir/daemon.log ready_line="starting up, listening on $sif"
	case $name in
	knockd) cmd=("$KNOCKD_DEBIAN" -i "$sif" -c "$conf") ;;
	fwknopd)
		cmd=("$FWKNOPD_DEBIAN" -f -i "$sif" -c "$conf" -a "$dir/access.conf" -d "$dir/state/digest.cache" -p "$dir/state/fwknopd.pid" -r "$dir/state")
		ready=$dir/stdout ready_line="Starting fwknopd main event loop"
		;;
	doorward) cmd=("$work/bin/knockd" -i "$sif" -c "$conf" -g "$dir/daemon.log" --state-dir "$dir/state") ;;
	esac
	# `ip netns exec` execs the daemon: $! is the daemon's own pid.
	ip netns exec "$srv" "${cmd[@]}" >"$dir/stdout" 2>&1 &
	local dpid=$!
	pids+=("$dpid")
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q "$ready_line" "$ready" 2>/dev/null && break
		kill -0 "$dpid" 2>/dev/null || die "$name exited at start-up: $(cat "$dir/stdout" "$dir/daemon.log" 2>/dev/null)"
		sleep 0.1
	done
	((i < 100)) || die "$name did not log its start-up line within 10 s"

	# The latency clock: the kernel's receive timestamp of each legitimate
	# client's SYN to the last knock port (the same skb timestamp the
	# daemon's own capture sees), CLOCK_REALTIME in ns. The filter runs in
	# the kernel and matches no flood packet (they all go to 7000). The
	# SPA packets all come from the client's own address, which a flood
	# from random sources hits once in 2^32 packets.
	local tpid= filter="src net $net.0/24 and tcp dst port 9000 and tcp[tcpflags] & tcp-syn != 0"
	[[ $proto == fwknop ]] && filter="src host $net.2 and udp dst port $SPA_PORT"
	if [[ $STAMPS == tcpdump ]]; then
		ip netns exec "$srv" tcpdump -i "$sif" -Z root -nn -U -s 96 --time-stamp-precision=nano -w "$dir/last-knocks.pcap" \
			"$filter" 2>"$dir/tcpdump.err" &
		tpid=$!
		pids+=("$tpid")
		for ((i = 0; i < 50; i++)); do
			grep -q "listening on" "$dir/tcpdump.err" 2>/dev/null && break
			kill -0 "$tpid" 2>/dev/null || die "tcpdump exited: $(cat "$dir/tcpdump.err")"
			sleep 0.1
		done
		((i < 50)) || die "tcpdump did not start within 5 s"
	fi
	sleep 0.3

	# Kernel counters of the capture socket. Ours reads (and so resets)
	# PACKET_STATISTICS itself and logs the totals at shutdown; for knockd,
	# which never reads them, knock-flood reads them from outside
	# (pidfd_getfd). Reading here zeroes them before the floods.
	local ours_logs_stats=0
	if [[ $name == doorward ]] && grep -q "packets passed the filter" "$work/bin/knockd"; then
		ours_logs_stats=1
	else
		"$FLOOD" sockstats "$dpid" >/dev/null 2>"$dir/sockstats.err" ||
			echo "   cannot read $name's socket statistics: $(cat "$dir/sockstats.err")"
	fi

	# The machine's load with the daemon idle, over one second, to judge
	# how much of the machine figure below is other work.
	local m0 m1 w0 base
	read -r m0 _ < <(machine_ticks)
	w0=$(now)
	sleep 1
	read -r m1 _ < <(machine_ticks)
	base=$(awk -v d=$((m1 - m0)) -v t="$TICK" -v n="$(nproc)" -v w="$(awk -v a="$w0" -v b="$(now)" 'BEGIN { print b - a }')" \
		'BEGIN { printf "%.0f", d / t / n / w * 100 }')

	local rx0 d0 s0 sirq0 snmp0 t_start
	rx0=$(rx_packets "$srv" "$sif")
	snmp0=$(snmp "$srv")
	d0=$(cpu_ticks "$dpid")
	read -r s0 sirq0 < <(machine_ticks)
	t_start=$(now)

	echo "   $FLOODS $proto floods of ${DURATION}s (rate $rate, 0 = max, $GENERATOR) with $KNOCKS knock(s) each; machine busy before: $base %"
	local f fpid sent=0 secs=0 pps_list=
	for ((f = 0; f < FLOODS; f++)); do
		local t0
		t0=$(now)
		flood_once "$dir" "$cli" "$cif" "$srvip" "$rate" "$f" "$proto"
		pids+=("$fpid")
		for ((k = 1; k <= KNOCKS; k++)); do
			# The k-th knock of this flood at (k - 1/2)/KNOCKS of it.
			local at wait c=$((f * KNOCKS + k))
			at=$(awk -v t0="$t0" -v d="$DURATION" -v k="$k" -v n="$KNOCKS" 'BEGIN { printf "%.3f", t0 + d * (k - 0.5) / n }')
			wait=$(awk -v at="$at" -v now="$(now)" 'BEGIN { w = at - now; printf "%.3f", (w > 0 ? w : 0) }')
			sleep "$wait"
			if [[ $proto == sequence ]]; then
				timeout 5 ip netns exec "$cli" "$FLOOD" knock -src "$net.$((100 + c))" -dst "$srvip" 7000 8000 9000 \
					>>"$dir/knocks" 2>>"$dir/knocks.err" || echo "   knock $c failed: $(tail -1 "$dir/knocks.err")"
			elif timeout 5 ip netns exec "$cli" fwknop --rc-file "$dir/fwknoprc" --no-save-args --use-hmac \
				--key-base64-rijndael "$SPA_KEY" --key-base64-hmac "$SPA_HMAC" -A tcp/22 -a "$net.$((100 + c))" \
				-D "$srvip" -p "$SPA_PORT" >>"$dir/knocks.out" 2>>"$dir/knocks.err"; then
				echo "src=$net.$((100 + c)) last_hit=$(now)" >>"$dir/knocks"
			else
				echo "   SPA packet $c failed: $(tail -1 "$dir/knocks.err")"
			fi
		done
		wait "$fpid" || die "flood $f ($GENERATOR) failed: $(cat "$dir/flood.$f")"
		local fs fe
		read -r fs fe < <(flood_result "$dir/flood.$f")
		((fs > 0)) || die "flood $f ($GENERATOR) sent nothing: $(cat "$dir/flood.$f")"
		sent=$((sent + fs))
		secs=$(awk -v a="$secs" -v b="$fe" 'BEGIN { print a + b }')
		pps_list+=" $(awk -v n="$fs" -v s="$fe" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')"
		sleep "$GAP"
	done
	echo "   sent $sent packets in ${secs}s of flooding; per flood pps:$pps_list"
	local pps_range
	pps_range=$(tr ' ' '\n' <<<"$pps_list" | grep . | sort -n | sed -n '1p;$p' | paste -sd-)

	# Drain: wait until the daemon has worked through what it captured
	# (less than 5% of a core over half a second), at most DRAIN seconds.
	local c0 c1 idle=0 drained=$DRAIN
	c0=$(cpu_ticks "$dpid")
	for ((i = 1; i <= DRAIN * 2; i++)); do
		sleep 0.5
		c1=$(cpu_ticks "$dpid")
		if (((c1 - c0) * 100 <= TICK * 5 / 2)); then
			idle=$((idle + 1))
			((idle >= 2)) && {
				drained=$(awk -v i="$i" 'BEGIN { printf "%.1f", i / 2 }')
				break
			}
		else
			idle=0
		fi
		c0=$c1
	done
	echo "   drained after ${drained}s"

	# Measure before stopping: CPU and peak RSS vanish with the process.
	local d1 s1 sirq1 t_end hwm rx1 snmp1 passed=- dropped=- selfcount=-
	d1=$(cpu_ticks "$dpid")
	read -r s1 sirq1 < <(machine_ticks)
	t_end=$(now)
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$dpid/status")
	rx1=$(rx_packets "$srv" "$sif")
	snmp1=$(snmp "$srv")
	if ((!ours_logs_stats)); then
		if "$FLOOD" sockstats "$dpid" >"$dir/sockstats" 2>"$dir/sockstats.err"; then
			passed=$(kv "$dir/sockstats" packets)
			dropped=$(kv "$dir/sockstats" drops)
		else
			echo "   cannot read $name's socket statistics: $(cat "$dir/sockstats.err")"
		fi
	fi
	kill -TERM "$dpid" 2>/dev/null || true
	if [[ -n $tpid ]]; then
		kill -INT "$tpid" 2>/dev/null || true
	fi
	for ((i = 0; i < 50; i++)); do
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$dpid" 2>/dev/null || true
	wait "$dpid" 2>/dev/null || true
	[[ -n $tpid ]] && { wait "$tpid" 2>/dev/null || true; }
	if ((ours_logs_stats)); then
		passed=$(sed -n 's/.*capture [^ ]*: \([0-9]*\) packets passed the filter, \([0-9]*\) dropped by the kernel.*/\1/p' "$dir/daemon.log" | awk '{ s += $1 } END { print s + 0 }')
		dropped=$(sed -n 's/.*capture [^ ]*: \([0-9]*\) packets passed the filter, \([0-9]*\) dropped by the kernel.*/\2/p' "$dir/daemon.log" | awk '{ s += $1 } END { print s + 0 }')
		selfcount=$(sed -n 's/.*\] \([0-9]*\) packets processed$/\1/p' "$dir/daemon.log" | tail -1)
		selfcount=${selfcount:--}
	fi
	# Doorward's own knock-to-command latency (the last line, logged at
	# shutdown): from the last knock's capture timestamp to the moment the
	# start command is handed to the shell, no process start-up in it.
	local own="- - - -"
	if [[ $name == doorward ]] && grep -q "knock-to-command latency:" "$dir/daemon.log"; then
		own=$(own_latency "$dir/daemon.log")
		# None measured: no knock opened anything (or a build from before
		# fwknop doors' engine recorded into the daemon's histogram).
		[[ $own == "0 "* ]] && own="- - - -"
	fi

	# Latency: the first command-file line of each legitimate address
	# minus the kernel's receive timestamp of that client's SYN to 9000
	# (tcpdump), or, without tcpdump, the client's own send time.
	if [[ $STAMPS == tcpdump && $proto == fwknop ]]; then
		# All from one address: the n-th SPA packet captured is the n-th
		# the client sent, whose allow-IP is the n-th line of knocks.
		tcpdump -r "$dir/last-knocks.pcap" -nn -tt --time-stamp-precision=nano 2>/dev/null |
			awk 'NR == FNR { split($1, a, "="); ip[NR] = a[2]; next } (FNR in ip) { print "src=" ip[FNR], "last_hit=" $1 }' "$dir/knocks" - >"$dir/last-hits"
	elif [[ $STAMPS == tcpdump ]]; then
		tcpdump -r "$dir/last-knocks.pcap" -nn -tt --time-stamp-precision=nano 2>/dev/null |
			awk '{ src = $3; sub(/\.[0-9]+$/, "", src); if (!(src in t)) { t[src] = $1; print "src=" src, "last_hit=" $1 } }' >"$dir/last-hits"
	else
		cp "$dir/knocks" "$dir/last-hits"
	fi
	local stamped opened lat
	stamped=$(wc -l <"$dir/last-hits")
	awk 'NR == FNR { split($1, a, "="); split($2, b, "="); hit[a[2]] = b[2]; next }
		($2 in hit) && !seen[$2]++ { printf "%s %.3f\n", $2, ($1 - hit[$2]) * 1000 }' "$dir/last-hits" "$dir/opened" >"$dir/latency"
	opened=$(awk 'NR == FNR { ours[$1]; next } ($2 in ours) && !seen[$2]++ { n++ } END { print n + 0 }' \
		<(grep -o 'src=[0-9.]*' "$dir/knocks" | cut -d= -f2) "$dir/opened")
	lat=$(awk '{ print $2 }' "$dir/latency" | sort -g | awk '{ v[++n] = $1 } END {
			if (!n) { print "- -"; exit }
			med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			r = int(0.99 * n); if (r < 0.99 * n) r++
			printf "%.2f %.2f\n", med, v[r] }')
	local logsize
	logsize=$(cat "$dir/daemon.log" "$dir/stdout" 2>/dev/null | wc -c) || true # fwknopd writes no daemon.log

	# Kernel cross-checks: what the server's IPv4/TCP stack took in.
	local kin
	kin=$(awk -v a="$snmp0" -v b="$snmp1" 'BEGIN { split(a, x, " "); split(b, y, " ");
		printf "IP InReceives %d, InHdrErrors %d, InAddrErrors %d; TCP InSegs %d, InCsumErrors %d", y[1] - x[1], y[2] - x[2], y[3] - x[3], y[4] - x[4], y[5] - x[5] }')
	echo "   server kernel: $kin (rx_veth $((rx1 - rx0)); packets from martian sources such as 0/8, 127/8 and 224/4 do not reach TCP or UDP)"
	((stamped == clients)) || echo "   note: $stamped of $clients last knocks were timestamped"

	# name rate generator floods offered rx_veth passed dropped processed self
	# d_ticks m_ticks sirq_ticks rss_KiB opened clients p50 p99 log_bytes pps drained seconds base pps_range
	# own_count own_p50 own_p99 own_max proto
	awk -v name="$name" -v rate="$rate" -v gen="$GENERATOR" -v floods="$FLOODS" -v offered=$((sent + per_knock * clients)) \
		-v rx=$((rx1 - rx0)) -v passed="$passed" -v dropped="$dropped" -v self="$selfcount" \
		-v dt=$((d1 - d0)) -v mt=$((s1 - s0)) -v st=$((sirq1 - sirq0)) -v hwm="$hwm" -v opened="$opened" -v n="$clients" \
		-v lat="$lat" -v logsize="$logsize" -v secs="$secs" -v sent="$sent" -v drained="$drained" \
		-v span="$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')" -v base="$base" -v range="$pps_range" \
		-v own="$own" -v proto="$proto" 'BEGIN {
			split(lat, l, " ")
			processed = (passed == "-") ? "-" : passed - dropped
			printf "%s %s %s %d %d %d %s %s %s %s %d %d %d %d %d %d %s %s %d %.0f %s %s %s %s %s %s\n", name, rate, gen, floods, offered, rx,
				passed, dropped, processed, self, dt, mt, st, hwm, opened, n, l[1], l[2], logsize, sent / secs, drained, span, base, range, own, proto
		}' >>"$work/results"

	# Free this pair before the next daemon runs.
	for ns in "$srv" "$cli"; do
		left=$(ip netns pids "$ns" 2>/dev/null || true)
		[[ -n $left ]] && kill -KILL $left 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
}

echo "flood generator: $GENERATOR$([[ $GENERATOR == knock-flood ]] && echo " (mode $MODE)"); latency clock: $([[ $STAMPS == tcpdump ]] && echo "tcpdump receive timestamps" || echo "the clients' send times (tcpdump not found)")"
for proto in $PROTOCOLS; do
	case $proto in
	sequence) what="TCP SYNs to port 7000" ;;
	fwknop) what="UDP datagrams of $SPA_LEN random base64 characters to port $SPA_PORT" ;;
	esac
	echo "$proto: $FLOODS floods of ${DURATION}s of $what from random sources in $PREFIX, rate ${RATE} (0 = max); $KNOCKS legitimate knock(s) per flood"
done
# The fwknop stanza's keys, new for every run, as fwknop --key-gen makes
# them (32 and 64 random bytes).
SPA_KEY=$(head -c 32 /dev/urandom | base64 -w0)
SPA_HMAC=$(head -c 64 /dev/urandom | base64 -w0)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
probe=$(probe_overhead)
echo "start_command probe (os/exec of /bin/sh -c 'exec date') from spawn to date's clock read: $probe"
idx=0
for proto in $PROTOCOLS; do
	for rate in ${RATE//,/ }; do
		for d in $DAEMONS; do
			speaks "$d" "$proto" || continue
			bench "$d" "$idx" "$rate" "$proto"
			idx=$((idx + 1))
		done
	done
done

echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r), $GENERATOR, $FLOODS x ${DURATION}s floods at rate ${RATE} (0 = max) from $PREFIX, load average at start $load0, at end $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v tick="$TICK" 'function f(v) { return v == "-" ? v : sprintf("%.2f", v) }
BEGIN {
	printf "%-9s %-8s %6s %9s %10s %10s %9s %6s %8s %8s %8s %7s %7s %7s %7s %8s %8s %8s %7s\n", "daemon", "protocol", "rate", "flood_pps", "offered", "processed", "k_drops",
		"cpu_s", "us/pkt", "mach_us", "sirq_us", "opened", "p50_ms", "p99_ms", "max_ms", "ext_p50", "ext_p99", "rss_MiB", "log_KiB"
}
{
	cpu = $11 / tick
	printf "%-9s %-8s %6s %9d %10d %10s %9s %6.2f %8.2f %8.2f %8.2f %7s %7s %7s %7s %8s %8s %8.1f %7.1f\n", $1, $29, ($2 == 0 ? "max" : $2), $20, $5, $9, $8,
		cpu, cpu * 1e6 / $5, $12 / tick * 1e6 / $5, $13 / tick * 1e6 / $5, $15 "/" $16, f($26), f($27), f($28), $17, $18, $14 / 1024, $19 / 1024
}' "$work/results"
echo
echo "flood_pps: packets sent / seconds spent sending, over all floods; offered: flood packets + 3 per legitimate knock (sequence) or 1 (fwknop);"
echo "processed: packets that passed the capture socket's filter minus k_drops, those the kernel dropped because the ring was full (PACKET_STATISTICS);"
echo "cpu_s: the daemon's user+system CPU from before the first flood to the end of the drain (/proc/PID/stat); us/pkt: that per offered packet;"
echo "mach_us: the whole machine's busy CPU (all cores, /proc/stat, generator and softirq included) per offered packet, over the same span; sirq_us: its softirq part;"
echo "opened: legitimate knocks whose command ran; p50/p99/max_ms: knock-to-command latency as the daemon measures it (Doorward's log: the last knock's"
echo "capture timestamp to the start command being handed to the shell; knockd cannot say: -); ext_p50/p99: kernel receive time of the last knock SYN"
echo "(tcpdump) to the start command's date, over those that opened: includes starting the command's process (the probe above)."
awk '{ printf "%s (%s): %s floods in %ss (%s packets/s per flood), drained after %ss, machine busy before the floods %s %%%s%s\n", $1, $29, $4, $22, $24, $21, $23,
	($10 != "-" ? ", its own count of packets processed " $10 " (capture: " $9 ")" : ""),
	($25 != "-" ? ", its own latency over " $25 " start commands" : "") }' "$work/results"
cp "$work/results" "$work/results.txt"
