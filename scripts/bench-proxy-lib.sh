# Shared by scripts/bench-proxy and scripts/bench-proxy-ab (sourced, not run): installing wrk and
# nginx, the nginx instances, and a Latchkey with a stored Chorus credential pointed at the
# upstream. Each function works under "$work", the caller's scratch directory.

install() {
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; fi
}
command -v wrk >/dev/null || install wrk
[ -x /usr/sbin/nginx ] || install nginx

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts an nginx instance of its own (its worker processes, its pid file "$work/NAME/nginx.pid")
# with the given server block(s): `nginx_conf NAME BLOCKS`.
nginx_conf() {
  local user_line=""
  [ "$(id -u)" = 0 ] && user_line="user root;"
  mkdir -p "$work/$1"
  cat >"$work/$1/nginx.conf" <<CONF
$user_line
worker_processes auto;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/$1/body; proxy_temp_path $work/$1/proxy; fastcgi_temp_path $work/$1/fcgi;
  uwsgi_temp_path $work/$1/uwsgi; scgi_temp_path $work/$1/scgi;
  keepalive_requests 1000000;
  $2
}
CONF
  /usr/sbin/nginx -e "$work/$1/error.log" -c "$work/$1/nginx.conf"
}

# The upstream every row is measured against: a small static JSON answer, `start_upstream PORT`.
start_upstream() {
  nginx_conf upstream "server {
    listen 127.0.0.1:$1;
    location / { default_type application/json; return 200 '{\"engagements\":[],\"continuation_key\":null}'; }
  }"
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$1/" >/dev/null && break; sleep 0.1; done
}

# Stops every nginx instance started under "$work".
stop_nginx() {
  local pid
  for pid in "$work"/*/nginx.pid; do [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null; done
  return 0
}

# Each proxy runs in a session of its own (setsid), as nginx does once it has daemonized and as a
# service does: the kernel's autogroup scheduling shares the CPU between sessions first, so a proxy
# started in this script's session would share one share with wrk, while nginx has its own.

# Starts `BINARY serve` with its data in "$work/NAME", the catalog's Chorus provider pointed at
# the upstream on PORT, and stores the credential `bench`: `start_latchkey NAME BINARY PORT`. Sets
# NAME_pid, NAME_token and NAME_url (the proxied URL of the upstream's answer).
start_latchkey() {
  setsid env LATCHKEY_DATA_DIR="$work/$1" LATCHKEY_LOG=warn \
    LATCHKEY_PROVIDER_CHORUS_BASE_URL="http://127.0.0.1:$3" \
    "$2" serve --listen 127.0.0.1:0 >"$work/$1.out" 2>"$work/$1.err" &
  eval "${1}_pid=$!"
  for _ in $(seq 200); do
    sed -n '/^Admin API credential/{n;p}' "$work/$1.out" 2>/dev/null | grep -q lkt_ && break
    sleep 0.1
  done
  local url token
  url=$(sed -n 's/^Latchkey is listening on //p' "$work/$1.out")
  token=$(sed -n '/^Admin API credential/{n;s/^ *//;p;q}' "$work/$1.out")
  [ -n "$url" ] && [ -n "$token" ] || { cat "$work/$1.out" "$work/$1.err" | sed 's/lkt_[^[:space:]"]*/lkt_(not shown)/g'; return 1; }
  curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    "$url/v1/credentials?verify=false" \
    -d '{"provider":"chorus","name":"bench","fields":{"api_token":"bench-token-0123456789abcdef"}}'
  curl -sf -o /dev/null -H "Authorization: Bearer $token" "$url/v1/proxy/bench/v3/engagements"
  eval "${1}_token=$token ${1}_url=$url/v1/proxy/bench/v3/engagements"
}

# CPU time (user + system, in clock ticks) the given processes and their threads have used so far.
cpu_ticks() { local p; for p in $1; do cat "/proc/$p/stat"; done | awk '{ t += $14 + $15 } END { print t }'; }
# The same, as user time and system time apart: `read -r user system < <(cpu_split_ticks PIDS)`.
cpu_split_ticks() { local p; for p in $1; do cat "/proc/$p/stat"; done | awk '{ u += $14; s += $15 } END { print u, s }'; }
