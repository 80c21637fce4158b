#!/usr/bin/env bash
# Puts nats-server 2.10+ at .tools/nats-server/nats-server and prints its path.
#
# Debian 12's nats-server (2.9.10) cannot fsync every JetStream write (`sync_interval: always`)
# and predates fixes for stream loss after kill -9 (2.10.23). Debian trixie's runs here as it is.
set -euo pipefail
exec "$(dirname "$0")/get-debian-binary.sh" trixie nats-server usr/sbin/nats-server
