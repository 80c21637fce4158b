#!/usr/bin/env bash
# What `npm test` needs beyond `npm install`, got before the first test runs (npm runs this as
# `pretest`; also `npm run test:tools`). What can be had without root is fetched into .tools/;
# a missing system package is installed when running as root, and otherwise the run stops here
# naming the one command that installs it. A service that is not running stops the run with the
# command that starts it. Nothing is skipped later for want of a tool.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "test-tools: $*" >&2
  exit 1
}

# A Debian package's command: installed by apt as root, else named for the user to install.
need_package() {
  local command=$1 package=$2 why=$3
  command -v "$command" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ]; then
    fail "$command is missing ($why): sudo apt-get install -y --no-install-recommends $package"
  fi
  echo "test-tools: installing $package ($why)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null
}

# Go binaries from Debian's packages, unpacked into .tools/ (no root, the system untouched):
# nats-server 2.10+ (the cluster tests and the fault suite; it can fsync every write) and
# Prometheus (a real remote-write client and scraper in the integration tests), and
# VictoriaMetrics and Prometheus again as remote-write receivers of the worker.
scripts/get-debian-binary.sh trixie nats-server usr/sbin/nats-server >/dev/null \
  || fail "could not fetch nats-server 2.10 from Debian's mirror (scripts/get-nats-server.sh)"
scripts/get-debian-binary.sh bookworm prometheus usr/bin/prometheus >/dev/null \
  || fail "could not fetch prometheus from Debian's mirror (scripts/get-debian-binary.sh)"
scripts/get-debian-binary.sh bookworm victoria-metrics usr/bin/victoria-metrics >/dev/null \
  || fail "could not fetch victoria-metrics from Debian's mirror (scripts/get-debian-binary.sh)"

need_package nats-server nats-server "the worker's pulls are tested against Debian 12's nats-server 2.9 too"
need_package docker-compose docker-compose "it validates docker-compose.yml without a Docker engine"
need_package openssl openssl "the TLS tests make their certificates with it"
need_package chromium chromium "the live page's end-to-end test drives it headless (playwright-core)"
need_package iptables iptables "the fault suite's partition and packet-loss scenarios drop packets with it"
need_package ip iproute2 "the fault suite's partition scenario puts nats-servers in network namespaces"

# PostgreSQL: the tests make and drop databases of their own there.
if [ -z "${TEST_PG_URL:-}" ]; then
  if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    fail "no PostgreSQL on 127.0.0.1:5432: start it (Debian: pg_ctlcluster 15 main start) or set TEST_PG_URL=postgres://…"
  fi
fi
echo "test-tools: ok ($(.tools/nats-server/nats-server --version), $(.tools/prometheus/prometheus --version 2>&1 | head -n 1 | cut -d' ' -f1-3))"
