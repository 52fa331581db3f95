#!/bin/sh
# The current rotating knock sequence of a door (docs/rotating.md, doorward-rotating-v1),
# with nothing but sh, openssl and date. Prints "port:proto ..."; HOST=h sends it with knock(1).
# usage: [NOW=unixtime] [ADDR=address] [HOST=h] knock-rotating.sh SECRET_FILE DOOR PORTS [LENGTH [PERIOD [tcp|udp|both]]]
set -eu
door=$2 ports=$3 len=${4:-4} per=${5:-30} proto=${6:-tcp} now=${NOW:-$(date +%s)} s= key= acc=0 bits=0 out= got=' ' c=0 k=0
read -r s <"$1" || :
A=ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz
while [ -n "$s" ]; do ch=${s%"${s#?}"} s=${s#?}; case $ch in ' ' | = | - | '	') continue ;; esac
	p=${A%%"$ch"*}; [ ${#p} -lt 58 ] || { echo "secret is not base32" >&2; exit 1; }
	acc=$((acc << 5 | ${#p} % 32)) bits=$((bits + 5))
	[ $bits -lt 8 ] || { bits=$((bits - 8)); key=$key$(printf %02x $((acc >> bits))); acc=$((acc & ((1 << bits) - 1))); }
done
IFS=,; set -f; set -- $ports; IFS=' ' m=0
for r; do m=$((m + ${r#*-} - ${r%-*} + 1)); done
d=$m; [ "$proto" != both ] || d=$((2 * m)); lim=$((65536 - 65536 % d))
while [ $k -lt "$len" ]; do
	h=$(printf '%s' "doorward-rotating-v1|$door|$((now / per))|${ADDR-}|$c" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key")
	h=${h##* } c=$((c + 1))
	while [ -n "$h" ] && [ $k -lt "$len" ]; do r=${h#????}; v=$((0x${h%"$r"})) h=$r
		[ $v -lt $lim ] || continue; i=$((v % d)) pr=$proto
		[ "$proto" != both ] || { pr=tcp; [ $i -lt $m ] || pr=udp i=$((i - m)); }
		for r; do lo=${r%-*} hi=${r#*-}; [ $i -gt $((hi - lo)) ] || break; i=$((i - hi + lo - 1)); done
		case $got in *" $((lo + i)) "*) continue ;; esac
		got="$got$((lo + i)) " out="$out $((lo + i)):$pr" k=$((k + 1))
	done
done
if [ -n "${HOST-}" ]; then exec knock "$HOST" $out; else echo ${out# }; fi
