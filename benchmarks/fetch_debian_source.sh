#!/usr/bin/env bash
# Unpack the upstream source of a Debian source package into benchmarks/work/PACKAGE/ and
# print the tree's path; a second call only prints it.
#   benchmarks/fetch_debian_source.sh gzip        -> .../benchmarks/work/gzip/gzip-1.12
# Needs root for apt-get and network. The system's apt configuration is left alone: the
# deb-src line and its package lists live under ${XDG_CACHE_HOME:-~/.cache}/buildtape-bench.
set -euo pipefail
pkg=${1:?usage: fetch_debian_source.sh PACKAGE}
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/work/$pkg"
tree() { find "$dest" -mindepth 1 -maxdepth 1 -type d ! -name apt | sort | head -1; }
[ -d "$dest" ] && [ -n "$(tree)" ] && { tree; exit 0; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/buildtape-bench"
mkdir -p "$cache/lists/partial" "$dest/apt"
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
echo "deb-src http://deb.debian.org/debian $codename main" >"$cache/sources.list"
apt=(apt-get -qq -o APT::Sandbox::User=root -o Dir::Etc::SourceList="$cache/sources.list"
     -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$cache/lists")
ls "$cache/lists/"*Sources* >/dev/null 2>&1 || "${apt[@]}" update >/dev/null
(cd "$dest/apt" && "${apt[@]}" source --download-only "$pkg" >/dev/null 2>&1)
orig=$(ls "$dest/apt/"*.orig.tar.* | head -1)
tar -xf "$orig" -C "$dest"
tree
