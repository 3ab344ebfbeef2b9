#!/bin/sh
# Builds the .rpm into build/pkg/ (run by `make rpm`, after `make resortd`) from the
# already built ./resortd, with rpmbuild's _topdir in build/pkg/rpmbuild. Debian's rpm
# has no systemd-rpm-macros, so packaging/rpm/macros.systemd-fallback is loaded when
# %_unitdir is undefined. --nodeps: the build dependencies are Debian packages.
# Quiet on success; on failure prints the build log.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/pkg
topdir=$out/rpmbuild
log=$out/rpm-build.log
cd "$top"

if [ ! -x resortd ]; then
	echo "build-rpm.sh: ./resortd is missing: run make resortd (or make rpm)" >&2
	exit 1
fi
rm -rf "$topdir"
rm -f "$out"/resortd-*.rpm
mkdir -p "$topdir/BUILD" "$topdir/RPMS" "$topdir/SOURCES" "$topdir/SPECS" "$topdir/SRPMS"

set -- --define "_topdir $topdir" --define "resortd_src $top"
if [ -z "$(rpm --eval '%{?_unitdir}')" ]; then
	set -- "$@" --load "$top/packaging/rpm/macros.systemd-fallback"
fi
if ! rpmbuild -bb --nodeps --quiet "$@" packaging/rpm/resortd.spec >"$log" 2>&1; then
	cat "$log" >&2
	echo "build-rpm.sh: rpmbuild failed (log: $log)" >&2
	exit 1
fi
find "$topdir/RPMS" -name 'resortd-*.rpm' -exec cp {} "$out/" \;
ls "$out"/resortd-*.rpm >/dev/null
