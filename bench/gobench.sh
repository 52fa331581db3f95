#!/bin/sh
# gobench.sh BASE [ROUNDS [PKG:BENCH...]]: the per-source table's and the
# detectors' Go benchmarks, or only the PKG:BENCH given (formats/fwknop:.
# detectors/fwknop:Observe), before (commit BASE) and after (the working
# tree), compared with benchstat. The old and the new test binaries run
# alternately, ROUNDS times each (default 10), so that load from other jobs
# on a shared machine falls on both alike. Needs benchstat:
#   go install golang.org/x/perf/cmd/benchstat@latest
set -eu
base=$1
rounds=${2:-10}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git -C "$root" archive "$base" | tar -x -C "$work/src"
shift $(($# < 2 ? $# : 2))
[ $# -gt 0 ] || set -- internal/srctable:. detectors/sequence:'HotPath|Expire' detectors/knockdaemon:HotPath
for p in "$@"; do
	pkg=${p%%:*}
	name=$(echo "$pkg" | tr / _)
	(cd "$work/src" && go test -c -o "$work/$name.old" "./$pkg")
	(cd "$root" && go test -c -o "$work/$name.new" "./$pkg")
done
i=0
while [ "$i" -lt "$rounds" ]; do
	for v in old new; do
		for p in "$@"; do
			pkg=${p%%:*}
			name=$(echo "$pkg" | tr / _)
			dir=$root/$pkg
			[ "$v" = new ] || dir=$work/src/$pkg
			# From the package's folder, as go test runs it: testdata/.
			(cd "$dir" && "$work/$name.$v" -test.run '^$' -test.bench "${p#*:}" -test.benchmem) >>"$work/$name.$v.txt"
		done
	done
	i=$((i + 1))
done
for p in "$@"; do
	name=$(echo "${p%%:*}" | tr / _)
	benchstat "$work/$name.old.txt" "$work/$name.new.txt"
done
