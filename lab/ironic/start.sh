#!/usr/bin/env bash
# Starts OpenStack Ironic (Debian 12: 21.4) standalone for the lab: no Keystone (noauth),
# SQLite, the API and the conductor in one process (`ironic`, rpc_transport = none), the `ipmi`
# hardware type (ipmitool power and management), the `pxe` boot interface (UEFI: shim → grub,
# its configuration written into a TFTP root that QEMU's user network serves) and the `direct`
# deploy interface, plus a plain HTTP server on the HTTP root (images, iPXE scripts).
#
#   lab/ironic/start.sh [DIR]      DIR defaults to $IRONIC_LAB_DIR or /tmp/ironic/run
#
# Environment: IRONIC_API_PORT (6385), IRONIC_HTTP_PORT (8089), IRONIC_DEPLOY_ENV_DIR
# (/tmp/ironic/deploy-env: where file:// deploy_kernel/deploy_ramdisk URLs may point). The VM reaches the host's
# 127.0.0.1 as 10.0.2.2 (QEMU user network), so the agent's API URL is http://10.0.2.2:PORT.
# Prints the shell lines to use the `baremetal` client on stdout:
#   eval "$(lab/ironic/start.sh)"; baremetal driver list
# Stop with lab/ironic/stop.sh [DIR]. Needs `make setup-ironic` (Debian's ironic packages).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${IRONIC_LAB_DIR:-/tmp/ironic/run}}
api_port=${IRONIC_API_PORT:-6385}
http_port=${IRONIC_HTTP_PORT:-8089}
host_from_vm=10.0.2.2
# The deploy environment (hwimage build-deploy): file:// deploy_kernel/deploy_ramdisk may name it.
deploy_env=${IRONIC_DEPLOY_ENV_DIR:-/tmp/ironic/deploy-env}

for prog in ironic ironic-dbsync baremetal ipmitool python3; do
  command -v "$prog" >/dev/null || { echo "ironic lab: $prog is missing — run: make setup-ironic" >&2; exit 2; }
done
if [ -f "$dir/ironic.pid" ] && kill -0 "$(cat "$dir/ironic.pid")" 2>/dev/null; then
  echo "ironic lab: already running in $dir (pid $(cat "$dir/ironic.pid")); stop it with lab/ironic/stop.sh $dir" >&2
  exit 1
fi
for port in "$api_port" "$http_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "ironic lab: port $port on 127.0.0.1 is in use — set IRONIC_API_PORT / IRONIC_HTTP_PORT" >&2
    exit 2
  fi
done

mkdir -p "$dir"/{tftp,http,master_images,tftp_master,locks,log}
dir=$(cd "$dir" && pwd)
shim=/usr/lib/shim/shimx64.efi.signed
grub=/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed
for f in "$shim" "$grub"; do
  [ -f "$f" ] || { echo "ironic lab: $f is missing — run: make setup" >&2; exit 2; }
done

sed -e "s|@DIR@|$dir|g" -e "s|@API_PORT@|$api_port|g" -e "s|@HTTP_PORT@|$http_port|g" \
  -e "s|@HOST@|$host_from_vm|g" -e "s|@DEPLOY_ENV@|$deploy_env|g" -e "s|@SHIM@|$shim|g" -e "s|@GRUB@|$grub|g" \
  "$here/ironic.conf.in" > "$dir/ironic.conf"

# SQLite cannot ALTER constraints, so a new database is made with create_schema, not upgrade.
if [ ! -s "$dir/ironic.db" ]; then sync_cmd=create_schema; else sync_cmd=upgrade; fi
ironic-dbsync --config-file "$dir/ironic.conf" "$sync_cmd" >"$dir/log/dbsync.log" 2>&1 || {
  echo "ironic lab: ironic-dbsync failed, see $dir/log/dbsync.log:" >&2; tail -5 "$dir/log/dbsync.log" >&2; exit 1; }

# The HTTP root (Ironic's [deploy]http_root): Python's own server, bound to the host's loopback.
setsid python3 -m http.server "$http_port" --bind 127.0.0.1 --directory "$dir/http" \
  >"$dir/log/http.log" 2>&1 </dev/null &
echo $! >"$dir/http.pid"

setsid ironic --config-file "$dir/ironic.conf" >"$dir/log/ironic.out" 2>&1 </dev/null &
echo $! >"$dir/ironic.pid"

# Ready when the API answers and the conductor has registered the ipmi hardware type.
export OS_AUTH_TYPE=none OS_ENDPOINT="http://127.0.0.1:$api_port"
for _ in $(seq 1 120); do
  if ! kill -0 "$(cat "$dir/ironic.pid")" 2>/dev/null; then
    echo "ironic lab: ironic exited, see $dir/log/ironic.log:" >&2; tail -20 "$dir/log/ironic.log" >&2; exit 1
  fi
  if baremetal driver list -f value -c "Supported driver(s)" 2>/dev/null | grep -qx ipmi; then
    echo "ironic lab: up in $dir (API http://127.0.0.1:$api_port, agent API http://$host_from_vm:$api_port, HTTP root :$http_port)" >&2
    echo "export OS_AUTH_TYPE=none OS_ENDPOINT=http://127.0.0.1:$api_port OS_BAREMETAL_API_VERSION=latest"
    exit 0
  fi
  sleep 1
done
echo "ironic lab: the API did not list the ipmi driver within 120 s, see $dir/log/ironic.log" >&2
exit 1
