#!/bin/sh
# Builds the .deb into build/pkg/ (run by `make deb`, after `make resortd`).
# The package is built with dpkg-buildpackage in a fresh copy of the sources,
# build/pkg/deb-src, with packaging/debian as its debian/. The release objects and
# ./resortd are copied in with their timestamps, so `make resortd` inside the package
# build finds them up to date and the package holds the binary the tests ran; on a
# tree without them it compiles. Quiet on success; on failure prints the build log.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/pkg
src=$out/deb-src
log=$out/deb-build.log
cd "$top"

rm -rf "$src"
rm -f "$out"/resortd_*.deb "$out"/resortd_*.buildinfo "$out"/resortd_*.changes
mkdir -p "$src/build"
cp -a Makefile src include schema demo scripts packaging "$src/"
[ -f resortd ] && cp -a resortd "$src/"
for d in release gen; do
	[ -d "build/$d" ] && cp -a "build/$d" "$src/build/"
done
cp -a packaging/debian "$src/debian"
cp -a packaging/resortd.service "$src/debian/resortd.service"
cp -a packaging/resortd.sysusers "$src/debian/resortd.sysusers"

if ! (cd "$src" && dpkg-buildpackage -b -uc -us) >"$log" 2>&1; then
	cat "$log" >&2
	echo "build-deb.sh: dpkg-buildpackage failed (log: $log)" >&2
	exit 1
fi
ls "$out"/resortd_*.deb >/dev/null
