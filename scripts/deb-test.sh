#!/usr/bin/env bash
# Checks a doorward .deb (make deb-test; docs/packaging.md):
#   0. make install into a DESTDIR and make uninstall leave nothing behind;
#   1. lintian reports no error (warnings are printed; docs/packaging.md
#      lists the expected ones);
#   2. dpkg --root installs it into an empty throwaway root (the package has
#      no maintainer scripts and no Depends, so no base system is needed),
#      and dpkg's list of its files equals scripts/testdata/deb-files;
#      every Go module linked in has a paragraph in the copyright file;
#   3. the control data: conffile, Conflicts/Replaces/Provides knockd;
#   4. an /etc/knockd.conf already in the root is kept, whether the admin
#      answers dpkg's conffile prompt with its default (Enter) or the install
#      is unattended (--force-confdef --force-confold).
# Needs root (dpkg --root installs files owned by root). As anyone else it
# skips, and under CI=true it fails, as the other root-only tests do.
#
# Usage: scripts/deb-test.sh PACKAGE.deb
set -euo pipefail

deb=${1:?usage: $0 PACKAGE.deb}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
golden=$root/scripts/testdata/deb-files

fail() {
	echo "deb-test: FAILED: $*" >&2
	exit 1
}

if [[ $(id -u) -ne 0 ]]; then
	[[ ${CI:-} == true ]] && fail "needs root (dpkg --root), and CI=true"
	echo "deb-test: skipped, needs root (dpkg --root)"
	exit 0
fi
for tool in lintian dpkg dpkg-deb; do
	command -v "$tool" >/dev/null || fail "$tool not found (scripts/deps.sh deb)"
done
[[ -f $deb ]] || fail "$deb not found"

work=$(mktemp -d /tmp/doorward-deb-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "0. make install and make uninstall, DESTDIR=$work/destdir"
d=$work/destdir
make -C "$root" -s install DESTDIR="$d" >/dev/null
for f in sbin/knockd bin/knock share/man/man8/knockd.8 share/man/man1/knock.1 share/man/man5/knockd.conf.5; do
	[[ -f $d/usr/local/$f ]] || fail "make install did not install /usr/local/$f"
done
if [[ -f $root/examples/doorward.service ]]; then
	grep -q '/usr/local/sbin/knockd' "$d/usr/local/lib/systemd/system/doorward.service" ||
		fail "the installed unit does not run /usr/local/sbin/knockd"
fi
make -C "$root" -s uninstall DESTDIR="$d" >/dev/null
left=$(find "$d" -type f)
[[ -z $left ]] || fail "make uninstall left: $left"

echo "1. lintian $deb"
# lintian warns about running as root; the package is only read.
rc=0
lintian --fail-on error "$deb" >"$work/lintian" 2>&1 || rc=$?
grep -v 'running with root privileges' "$work/lintian" | sed 's/^/   /' || true
((rc == 0)) && ! grep -q '^E:' "$work/lintian" || fail "lintian reports errors (above)"

# newroot DIR: an empty dpkg database under DIR.
newroot() {
	mkdir -p "$1"/var/lib/dpkg/{info,updates,triggers} "$1"/etc
	touch "$1"/var/lib/dpkg/{status,available}
}

echo "2. dpkg --root: install into an empty root, list its files"
r=$work/fresh
newroot "$r"
dpkg --root="$r" -i "$deb" </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i into $r"; }
dpkg --root="$r" -L doorward | LC_ALL=C sort >"$work/files"
diff -u "$golden" "$work/files" || fail "installed files differ from ${golden#"$root"/} (above)"
echo "   $(wc -l <"$work/files") paths, as ${golden#"$root"/}"
for f in usr/sbin/knockd usr/bin/knock; do
	[[ -x $r/$f ]] || fail "/$f is not executable"
done
"$r/usr/sbin/knockd" --check -c "$r/etc/knockd.conf" >/dev/null || fail "the shipped /etc/knockd.conf does not pass knockd --check"
# The package's version is the daemon's (scripts/debian/changelog against
# cmd/knockd).
ver=$(dpkg-deb -f "$deb" Version)
v=$("$r/usr/sbin/knockd" -V)
[[ $v == *"(doorward ${ver%-*})" ]] || fail "package version $ver, but knockd -V says: $v"
echo "   knockd -V: $v"
# Every module linked into the binaries has its license in the copyright
# file (a Go dependency added to the daemon must add its paragraph).
if command -v go >/dev/null; then
	# The copyright file's Files fields, one name a line.
	awk '/^Files:/ {f = 1; sub(/^Files:/, ""); print; next} /^ / && f {print; next} {f = 0}' \
		"$r/usr/share/doc/doorward/copyright" | tr ', ' '\n\n' | grep . >"$work/files-fields"
	for m in $(go version -m "$r/usr/sbin/knockd" "$r/usr/bin/knock" | awk '$1 == "dep" {print $2}' | sort -u); do
		grep -qxF "$m" "$work/files-fields" ||
			fail "$m is linked into the binaries but has no Files paragraph in scripts/debian/copyright"
	done
	echo "   every linked module has a paragraph in the copyright file"
elif [[ ${CI:-} == true ]]; then
	fail "go not found (go version -m reads the linked modules)"
fi
status=$(dpkg --root="$r" -s doorward)
grep -qx 'Status: install ok installed' <<<"$status" || fail "not installed: $status"

echo "3. control data"
for want in 'Conflicts: knockd' 'Replaces: knockd' 'Provides: knockd'; do
	grep -qx "$want" <<<"$status" || fail "no '$want' in the control data"
done
grep -qx ' /etc/knockd.conf [0-9a-f]*' <<<"$status" || fail "/etc/knockd.conf is not a conffile: $status"
[[ -z $(dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -Ev '^\./(control|md5sums|conffiles)?$') ]] ||
	fail "maintainer scripts in the package: $(dpkg-deb --ctrl-tarfile "$deb" | tar -t | tr '\n' ' ')"
echo "   Conflicts, Replaces, Provides: knockd; conffile /etc/knockd.conf; no maintainer scripts"

echo "4. an existing /etc/knockd.conf is kept"
mine='# the admin'"'"'s own knockd.conf, written before the package'
for how in prompt unattended; do
	r=$work/$how
	newroot "$r"
	echo "$mine" >"$r/etc/knockd.conf"
	case $how in
	prompt) echo | dpkg --root="$r" -i "$deb" >"$work/dpkg.log" 2>&1 ;;
	unattended) dpkg --root="$r" --force-confdef --force-confold -i "$deb" </dev/null >"$work/dpkg.log" 2>&1 ;;
	esac || { cat "$work/dpkg.log" >&2; fail "dpkg -i ($how) into a root holding /etc/knockd.conf"; }
	[[ $(cat "$r/etc/knockd.conf") == "$mine" ]] || fail "$how: /etc/knockd.conf was replaced"
	[[ -f $r/etc/knockd.conf.dpkg-dist ]] || fail "$how: the package's version is not beside it as knockd.conf.dpkg-dist"
	echo "   $how: kept; the package's version is /etc/knockd.conf.dpkg-dist"
done
echo "deb-test: OK"
