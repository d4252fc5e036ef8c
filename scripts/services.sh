#!/usr/bin/env bash
# Starts the brokers the tests use when they are not already running on this machine:
# NATS with JetStream on 127.0.0.1:4222 and Redis on 127.0.0.1:6379 (Debian's packages),
# and installs the Chromium that the browser test drives (/usr/bin/chromium).
# Idempotent; installs the packages with apt-get when they are missing.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  for _ in $(seq 1 50); do listening "$1" && return 0; sleep 0.2; done
  echo "services: nothing listens on port $1 after 10 s" >&2
  return 1
}

install_missing() {
  local missing=()
  command -v nats-server >/dev/null || missing+=(nats-server)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v nft >/dev/null || missing+=(nftables) # the lab's packet loss (nft in network namespaces)
  # Debian's build: playwright-core drives it, so no browser download is needed.
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "services: installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_missing

# Debian's docker-compose (1.29): test/docker-files.e2e-spec.ts validates docker/compose.*.yml
# with `docker-compose config`, which needs no Docker engine. Without its recommends, which
# would bring docker.io (an engine, containerd, iptables) that nothing here runs.
install_compose() {
  command -v docker-compose >/dev/null && return 0
  echo "services: installing docker-compose"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
}

install_compose

# Debian's Prometheus, for its promtool only: test/grafana-dashboard.e2e-spec.ts lints the
# plugin's /metrics (`promtool check metrics`) and the dashboard's PromQL (`promtool check
# rules`). No server is started. Without recommends (the node exporter and friends).
install_promtool() {
  command -v promtool >/dev/null && return 0
  echo "services: installing prometheus (for promtool)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
}

install_promtool

if listening 4222; then
  echo "services: NATS already on 127.0.0.1:4222"
else
  mkdir -p /tmp/geo-ws-nats
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /tmp/geo-ws-nats -l /tmp/geo-ws-nats/server.log >/dev/null 2>&1 &
  wait_for 4222 && echo "services: started NATS with JetStream on 127.0.0.1:4222"
fi

if listening 6379; then
  echo "services: Redis already on 127.0.0.1:6379"
else
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_for 6379 && echo "services: started Redis on 127.0.0.1:6379"
fi
