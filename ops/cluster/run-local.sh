#!/usr/bin/env bash
# A local three-silo ControlPlane cluster in the production profile, against a local PostgreSQL.
#
#   bash ops/cluster/run-local.sh start    # builds, creates the database, starts silos on 5080, 5081, 5082
#   bash ops/cluster/run-local.sh status   # which silos are up (/readyz)
#   bash ops/cluster/run-local.sh stop     # SIGTERM to every silo: each leaves the cluster gracefully
#   bash ops/cluster/run-local.sh reset    # stop, drop the database and forget the admin key: start afresh
#
# Every silo serves /mcp, /api/v1 and the console on its own port. State lives in the PostgreSQL database
# (default controlplane_local on 127.0.0.1:5432, see ops/postgres-dev.sh); logs, pids and the bootstrap
# admin key are under data/local-cluster/ (mode 0700). The first start makes an admin operator key and
# prints it once; it stays in data/local-cluster/admin-key (0600) for your curl commands.
set -euo pipefail
cd "$(dirname "$0")/../.."

state=${CONTROLPLANE_LOCAL_DIR:-data/local-cluster}
database=${CONTROLPLANE_LOCAL_DATABASE:-controlplane_local}
pg_admin=${CONTROLPLANE_TEST_POSTGRES:-"Host=127.0.0.1;Port=5432;Username=postgres;Password=postgres;Database=postgres"}
http_ports=(5080 5081 5082)
silo_ports=(11111 11112 11113)
gateway_ports=(30000 30001 30002)
host_dll=src/ControlPlane.Host/bin/Release/net10.0/ControlPlane.Host.dll

log() { echo "run-local: $*" >&2; }

# Pieces of the Npgsql connection string, for psql.
part() { echo "$pg_admin" | tr ';' '\n' | awk -F= -v k="$1" 'tolower($1) == tolower(k) { print $2 }'; }

start() {
  if ! pg_isready -q -h "$(part Host)" -p "$(part Port)"; then
    log "PostgreSQL is not up on $(part Host):$(part Port); starting the local one (ops/postgres-dev.sh, as root)"
    bash ops/postgres-dev.sh >/dev/null
  fi

  export PGPASSWORD; PGPASSWORD=$(part Password)
  local psql=(psql -q -X -h "$(part Host)" -p "$(part Port)" -U "$(part Username)" -d "$(part Database)" -v ON_ERROR_STOP=1)
  if [ -z "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'")" ]; then
    log "creating database $database"
    "${psql[@]}" -c "CREATE DATABASE $database"
  fi

  log "building ControlPlane.Host (Release)"
  dotnet build src/ControlPlane.Host -c Release -v quiet -nologo >&2

  mkdir -p "$state" && chmod 700 "$state"
  if [ ! -f "$state/bootstrap.env" ]; then
    # The key is printed once here and kept only in admin-key; the silos get its hash.
    local made; made=$(dotnet "$host_dll" operators new-key --id admin)
    (umask 077
     echo "$made" | awk '/operator key/ { print $NF }' > "$state/admin-key"
     echo "$made" | grep -E '^ *ControlPlane__Bootstrap__' | sed 's/^ *//' > "$state/bootstrap.env"
     echo "ControlPlane__Audit__HashKey=$(head -c 32 /dev/urandom | base64)" >> "$state/bootstrap.env")
    log "admin operator key (also in $state/admin-key): $(cat "$state/admin-key")"
  fi

  if [ ! -f "$state/tls/cluster-tls.pfx" ]; then
    # Production silos talk mutual TLS or not at all; one certificate shared by the three, owner-readable only.
    dotnet "$host_dll" cluster new-certificate --out "$state/tls" >&2
  fi

  local connection="Host=$(part Host);Port=$(part Port);Username=$(part Username);Password=$(part Password);Database=$database"
  for i in 0 1 2; do
    if [ -f "$state/silo$i.pid" ] && kill -0 "$(cat "$state/silo$i.pid")" 2>/dev/null; then
      log "silo $i is already running (pid $(cat "$state/silo$i.pid"))"
      continue
    fi
    (
      set -a; . "$state/bootstrap.env"; set +a
      export ControlPlane__Profile=Production
      export ConnectionStrings__ControlPlane="$connection"
      export ControlPlane__AdvertisedIPAddress=127.0.0.1
      export ControlPlane__SiloPort=${silo_ports[$i]} ControlPlane__GatewayPort=${gateway_ports[$i]}
      export ControlPlane__Cluster__Tls__CertificatePath="$PWD/$state/tls/cluster-tls.pfx"
      export ControlPlane__Cluster__Tls__PasswordFile="$PWD/$state/tls/cluster-tls.password"
      export ControlPlane__DataDir="$PWD/$state/silo$i"
      export ASPNETCORE_URLS="http://127.0.0.1:${http_ports[$i]}"
      nohup dotnet "$host_dll" > "$state/silo$i.log" 2>&1 &
      echo $! > "$state/silo$i.pid"
    )
    log "silo $i starting on http://127.0.0.1:${http_ports[$i]} (log $state/silo$i.log)"
  done

  for i in 0 1 2; do
    for _ in $(seq 1 120); do
      curl -sf "http://127.0.0.1:${http_ports[$i]}/readyz" >/dev/null && break
      kill -0 "$(cat "$state/silo$i.pid")" 2>/dev/null || { log "silo $i exited; see $state/silo$i.log"; tail -n 20 "$state/silo$i.log" >&2; exit 1; }
      sleep 1
    done
    curl -sf "http://127.0.0.1:${http_ports[$i]}/readyz" >/dev/null || { log "silo $i not ready after 120 s; see $state/silo$i.log"; exit 1; }
  done

  log "cluster ready: every silo serves /mcp, /api/v1 and /console"
  for i in 0 1 2; do echo "http://127.0.0.1:${http_ports[$i]}"; done
  log "operator key: \$(cat $state/admin-key)   e.g. curl -s localhost:5080/api/v1/kill-switches -H \"Authorization: Bearer \$(cat $state/admin-key)\""
}

stop() {
  for i in 0 1 2; do
    local pidfile="$state/silo$i.pid"
    [ -f "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      if kill -0 "$pid" 2>/dev/null; then log "silo $i did not stop within 60 s; killing it"; kill -KILL "$pid"; fi
      log "silo $i stopped"
    fi
    rm -f "$pidfile"
  done
}

status() {
  for i in 0 1 2; do
    if curl -sf "http://127.0.0.1:${http_ports[$i]}/readyz" >/dev/null; then echo "silo $i: ready on http://127.0.0.1:${http_ports[$i]}"; else echo "silo $i: not ready"; fi
  done
}

reset() {
  stop
  export PGPASSWORD; PGPASSWORD=$(part Password)
  psql -q -X -h "$(part Host)" -p "$(part Port)" -U "$(part Username)" -d "$(part Database)" \
    -c "DROP DATABASE IF EXISTS $database WITH (FORCE)"
  rm -rf "$state"
  log "dropped $database and removed $state"
}

case "${1:-}" in
  start) start ;;
  reset) reset ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
