#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis servers the tests use are up: PostgreSQL at 127.0.0.1:5432
# (user postgres, trust authentication from 127.0.0.1) and Redis at 127.0.0.1:6379. A stopped
# server is started rather than the tests skipped. A server that is missing is installed from
# Debian's packages when this runs as root (as test.sh does for chromium); otherwise, or with
# SERVICES_NO_INSTALL=1, this says exactly what to install and exits 1.
set -uo pipefail

PG_PORT=5432
REDIS_PORT=6379

answers() {  # answers PORT: something listens on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

missing=()
if ! answers "$PG_PORT" && ! command -v pg_ctlcluster >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if ! answers "$REDIS_PORT" && ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && [ "${SERVICES_NO_INSTALL:-0}" != "1" ] \
      && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} from Debian's packages for the tests" >&2
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
          apt-get install -y -qq "${missing[@]}") >/dev/null; then
      echo "apt-get install ${missing[*]} failed" >&2
      exit 1
    fi
    if [[ " ${missing[*]} " == *" postgresql "* ]]; then
      # A fresh cluster asks for passwords over TCP; the tests connect as postgres from
      # 127.0.0.1 without one. Only the cluster installed just now is changed, for tests.
      version="$(ls /etc/postgresql | sort -V | tail -n1)"
      hba="/etc/postgresql/$version/main/pg_hba.conf"
      printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$hba"
    fi
  else
    echo "The tests need PostgreSQL at 127.0.0.1:$PG_PORT and Redis at 127.0.0.1:$REDIS_PORT." >&2
    echo "Missing: ${missing[*]}. On Debian or Ubuntu, as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    echo "and let user postgres connect from 127.0.0.1 without a password (pg_hba.conf:" >&2
    echo "  host all all 127.0.0.1/32 trust); or run scripts/test.sh as root to do all this." >&2
    exit 1
  fi
fi

if ! answers "$PG_PORT"; then
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
fi
if ! answers "$REDIS_PORT"; then
  echo "starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
ready() {  # the servers accept connections (their own probes when installed here)
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -h 127.0.0.1 -p "$PG_PORT" -q || return 1
  else
    answers "$PG_PORT" || return 1
  fi
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1
  else
    answers "$REDIS_PORT"
  fi
}
for _ in $(seq 1 30); do
  if ready; then
    exit 0
  fi
  sleep 1
done
echo "PostgreSQL or Redis did not come up" >&2
exit 1
