#!/usr/bin/env bash
# Usage: scripts/get-debian-binary.sh SUITE PACKAGE PATH-IN-PACKAGE [FOLDER]
#
# Puts one binary of a Debian package at .tools/FOLDER/<its file name> (FOLDER defaults to
# PACKAGE; give another to keep two suites' versions apart) and prints that path,
# without installing the package or touching the system's apt state: the package is downloaded
# from the Debian mirror this machine's apt already uses, with a private package list, and
# unpacked into a temporary folder. Go programs (nats-server, prometheus, victoria-metrics) run
# that way as they are, needing only libc. No root needed. Idempotent: a second run only prints
# the path.
#
#   scripts/get-debian-binary.sh trixie nats-server usr/sbin/nats-server   # 2.10, for durability
#   scripts/get-debian-binary.sh bookworm prometheus usr/bin/prometheus
#   scripts/get-debian-binary.sh trixie victoria-metrics usr/bin/victoria-metrics victoria-metrics-1.112
set -euo pipefail
if [ $# -ne 3 ] && [ $# -ne 4 ]; then
  echo "usage: $0 SUITE PACKAGE PATH-IN-PACKAGE [FOLDER]" >&2
  exit 2
fi
suite=$1 package=$2 inner=$3 folder=${4:-$2}
cd "$(dirname "$0")/.."
dest=.tools/$folder
bin="$dest/$(basename "$inner")"
if [ -x "$bin" ]; then
  echo "$PWD/$bin"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial"
# The mirror of the machine's own Debian sources (deb822 or one-line format).
mirror=$(
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'
  } | grep -E '/debian/?$' | head -n 1
) || true
if [ -z "$mirror" ]; then
  echo "get-debian-binary: no Debian mirror found in /etc/apt/sources.list*" >&2
  exit 1
fi
echo "deb $mirror $suite main" > "$work/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache::Archives=$work/archives"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=$(id -un)"
  -o "APT::Get::List-Cleanup=0"
)
apt-get "${apt_opts[@]}" update -qq >&2
(cd "$work" && apt-get "${apt_opts[@]}" download "$package" >&2)
dpkg-deb -x "$work/${package}"_*.deb "$work/root"
mkdir -p "$dest"
cp "$work/root/$inner" "$bin"
echo "$PWD/$bin"
