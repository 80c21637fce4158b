#!/usr/bin/env bash
# Puts a nats-server 2.10+ binary at .tools/nats-server/nats-server and prints its path.
#
# Debian 12's nats-server (2.9.10) cannot fsync every JetStream write (`sync_interval: always`)
# and predates fixes for stream loss after kill -9 (2.10.23). Debian trixie's package runs here as
# it is (a Go binary needing only libc), so it is fetched from the Debian mirror this machine's apt
# already uses, with a private apt list, without touching the system's packages. Idempotent: a
# second run only prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.tools/nats-server
bin="$dest/nats-server"
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
  echo "get-nats-server: no Debian mirror found in /etc/apt/sources.list*" >&2
  exit 1
fi
echo "deb $mirror trixie main" > "$work/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache::Archives=$work/archives"
  -o "APT::Get::List-Cleanup=0"
)
apt-get "${apt_opts[@]}" update -qq >&2
(cd "$work" && apt-get "${apt_opts[@]}" download nats-server >&2)
dpkg-deb -x "$work"/nats-server_*.deb "$work/root"
mkdir -p "$dest"
cp "$work/root/usr/sbin/nats-server" "$bin"
"$bin" --version >&2
echo "$PWD/$bin"
