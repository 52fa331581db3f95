#!/bin/sh
# Regenerates golden.txt: SPA packets made by the real fwknop client
# (Debian's fwknop-client 2.6.10), each with the keys that made it and the
# field values fwknop itself printed (-v), which vectors_test.go checks Open
# against. Run from this folder: sh gen.sh > golden.txt
# Nothing is sent: -T builds the packet only. HOME is a throwaway folder so
# no ~/.fwknoprc is read or written.
set -eu
HOME=$(mktemp -d); export HOME
trap 'rm -rf "$HOME"' EXIT
K=ZG9vcndhcmQtdGVzdC1yaWpuZGFlbC1rZXktMzJieXQ=   # "doorward-test-rijndael-key-32byt"
H=ZG9vcndhcmQtdGVzdC1obWFjLWtleS1mb3ItZ29sZGVuLXZlY3RvcnMtMDEyMzQ1Njc4OS1hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5eg==

vector() { # name key-args hmac-args -- other fwknop args
	name=$1 keyargs=$2 hmacargs=$3; shift 3
	# shellcheck disable=SC2086 # the key arguments are word lists on purpose
	out=$(fwknop -T -v -D 127.0.0.1 -B "$HOME/pkt" $keyargs $hmacargs "$@")
	echo "name: $name"
	echo "command: fwknop -T -v -D 127.0.0.1 -B pkt $keyargs $hmacargs $*"
	printf '%s\n' "$out" | sed -n '1,/^ Final SPA Data/{
		s/^ *Username: /user: /p
		s/^ *Message Type: \([0-9]*\).*/type: \1/p
		s/^ *Message String: /message: /p
		s/^ *Nat Access: /nat: /p
		s/^ *Client Timeout: /timeout: /p
		s/^ *Digest Type: [0-9]* (\(.*\))/digest: \1/p
		s/^ *Timestamp: /time: /p
		s/^ *Random Value: /random: /p
	}'
	echo "packet: $(head -n1 "$HOME/pkt")"
	echo
}

vector sha256          "--key-base64-rijndael $K" "--key-base64-hmac $H --use-hmac" -U alice -A tcp/22 -a 192.0.2.7
vector sha512-2ports   "--key-base64-rijndael $K" "--key-base64-hmac $H --hmac-digest-type sha512" -U alice -A tcp/22,udp/53 -a 192.0.2.7
vector sha512-timeout  "--key-base64-rijndael $K" "--key-base64-hmac $H --hmac-digest-type sha512" -U bob -A tcp/2222 -a 198.51.100.20 --fw-timeout 45
vector md5             "--key-base64-rijndael $K" "--key-base64-hmac $H --hmac-digest-type md5 -m md5" -U alice -A udp/1194 -a 192.0.2.7
vector sha1            "--key-base64-rijndael $K" "--key-base64-hmac $H --hmac-digest-type sha1 -m sha1" -U alice -A tcp/22 -a 192.0.2.7
vector sha384          "--key-base64-rijndael $K" "--key-base64-hmac $H --hmac-digest-type sha384 -m sha384" -U alice -A tcp/443 -a 203.0.113.99
vector sha3            "--key-base64-rijndael $K" "--key-base64-hmac $H --hmac-digest-type sha3_256 -m sha3_512" -U alice -A tcp/22 -a 192.0.2.7
vector inner-sha512    "--key-base64-rijndael $K" "--key-base64-hmac $H -m sha512" -U alice -A tcp/22 -a 192.0.2.7
vector source-ip       "--key-base64-rijndael $K" "--key-base64-hmac $H --use-hmac" -U carol -A tcp/22 -s
vector passphrase      "--key-rijndael fwknop-passphrase" "--key-base64-hmac $H --use-hmac" -U alice -A tcp/22 -a 192.0.2.7
vector no-hmac         "--key-rijndael fwknop-passphrase" "" -U alice -A tcp/22 -a 192.0.2.7
vector legacy          "--key-rijndael short" "-M legacy" -U alice -A tcp/22 -a 192.0.2.7
vector nat             "--key-base64-rijndael $K" "--key-base64-hmac $H --use-hmac" -U alice -A tcp/22 -a 192.0.2.7 -N 10.0.0.5,2222
vector nat-timeout     "--key-base64-rijndael $K" "--key-base64-hmac $H --use-hmac" -U alice -A tcp/22 -a 192.0.2.7 -N 10.0.0.5,2222 --fw-timeout 60
vector command         "--key-base64-rijndael $K" "--key-base64-hmac $H --use-hmac" -U alice -a 192.0.2.7 -C 'echo hello > /tmp/x'
