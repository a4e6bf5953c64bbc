#!/usr/bin/env bash
# A local PostgreSQL for development and the audit store's tests, on a fresh Debian machine, as root.
# Idempotent: installs PostgreSQL only if missing, starts the cluster if it is down, and (re)sets the password.
# The last line on stdout is the export to use, so `eval "$(bash ops/postgres-dev.sh)"` works; progress goes to stderr.
set -euo pipefail

log() { echo "postgres-dev: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "run as root (it installs packages and starts the cluster as the postgres user)"
  exit 1
fi

if [ "$(dpkg-query -W -f='${Status}' postgresql 2>/dev/null || true)" != "install ok installed" ]; then
  log "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y postgresql >&2
fi

# The newest installed major version; Debian names clusters <version>/main.
version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$version" ]; then
  log "no PostgreSQL server found under /usr/lib/postgresql"
  exit 1
fi

# One line of `pg_lsclusters -h` for <version>/main: version, name, port, status, owner, data dir, log file.
cluster() { pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main"'; }

# The package creates the main cluster, but an image built with create_main_cluster=false would not have one.
if [ -z "$(cluster)" ]; then
  log "creating cluster $version/main"
  pg_createcluster "$version" main >&2
fi

port=$(cluster | awk '{print $3}')
if [ "$port" != "5432" ]; then
  log "cluster $version/main listens on port $port, not 5432; the tests expect 5432"
  exit 1
fi

# Containers usually have no running systemd, so use the cluster wrapper directly rather than the service.
if [ "$(cluster | awk '{print $4}')" != "online" ]; then
  log "starting cluster $version/main"
  pg_ctlcluster "$version" main start >&2
fi

for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    break
  fi
  sleep 1
done
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "PostgreSQL did not accept connections on 127.0.0.1:5432 within 60 s; see /var/log/postgresql/postgresql-$version-main.log"
  exit 1
fi

# Over the local socket with peer auth, so it works before any password exists.
runuser -u postgres -- psql -q -X -v ON_ERROR_STOP=1 -c "ALTER USER postgres PASSWORD 'postgres';" >&2

# Debian's pg_hba.conf allows password (scram-sha-256) logins over TCP from 127.0.0.1; check that it really does.
if ! PGPASSWORD=postgres psql -q -X -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null; then
  log "password login over TCP to 127.0.0.1:5432 failed; check /etc/postgresql/$version/main/pg_hba.conf"
  exit 1
fi

log "PostgreSQL $version is ready on 127.0.0.1:5432"
echo 'export CONTROLPLANE_TEST_POSTGRES="Host=127.0.0.1;Port=5432;Username=postgres;Password=postgres;Database=postgres"'
