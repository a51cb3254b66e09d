#!/usr/bin/env bash
# Fetch Lua 5.4's upstream source from Debian's archive (apt-get source) into benchmarks/work/.
# Needs root for apt (deb-src lines are added to Debian's sources if missing) and dpkg-dev.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/work/lua"
[ -f "$dest/lua-5.4.4/Makefile" ] && { echo "$dest/lua-5.4.4"; exit 0; }
src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ] && ! grep -q "deb-src" "$src"; then
  sed -i 's/^Types: deb$/Types: deb deb-src/' "$src"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
command -v dpkg-source >/dev/null || apt-get install -y -qq dpkg-dev >/dev/null
mkdir -p "$dest/apt" && cd "$dest/apt"
apt-get source -qq --download-only lua5.4 >/dev/null 2>&1
tar xzf lua5.4_*.orig.tar.gz -C "$dest"
echo "$dest/lua-5.4.4"
