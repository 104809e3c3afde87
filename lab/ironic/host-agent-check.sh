#!/usr/bin/env bash
# A real Ironic (lab/ironic/start.sh running in DIR) deploys an image with `hwimage ironic-agent`
# running on this host and writing a disk image FILE — no machine: the node is fake-hardware
# (fake power, management, boot), its port this host's MAC. Shows lookup, heartbeats,
# get_deploy_steps, write_image (with a config drive Ironic builds from JSON), get_partition_uuids,
# install_bootloader; with a wrong SHA-256, the deploy fails with the reason in last_error.
#   lab/ironic/host-agent-check.sh DIR IMAGE_DIR NAME [SHA256]
# IMAGE_DIR holds a hwimage build (debian-12-server-amd64.img, .bmap, SHA256SUMS); SHA256 defaults
# to the image's own. Prints the node's final state and last_error; the disk is DIR/NAME.img.
set -uo pipefail
[ $# -ge 3 ] || { echo "usage: lab/ironic/host-agent-check.sh DIR IMAGE_DIR NAME [SHA256]" >&2; exit 2; }
dir=$(cd "$1" && pwd) images=$(cd "$2" && pwd) name=$3
export OS_AUTH_TYPE=none OS_ENDPOINT=http://127.0.0.1:${IRONIC_API_PORT:-6385} OS_BAREMETAL_API_VERSION=latest
img=debian-12-server-amd64.img
sha=${4:-$(awk -v f="$img" '$2 == f {print $1}' "$images/SHA256SUMS")}
ln -sf "$images/$img" "$dir/http/disk.img"
ln -sf "$images/$img.bmap" "$dir/http/disk.img.bmap"
mac=$(cat "/sys/class/net/$(ip -o route get 1.1.1.1 2>/dev/null | awk '{for(i=1;i<NF;i++) if($i=="dev") print $(i+1)}' | head -1)/address" 2>/dev/null || true)
[ -n "$mac" ] || mac=$(cat /sys/class/net/eth0/address)
U=$(baremetal node create --driver fake-hardware --name "$name" --deploy-interface direct --boot-interface fake \
  --power-interface fake --management-interface fake -f value -c uuid) || exit 1
baremetal port create --node "$U" "$mac" >/dev/null || exit 1
baremetal node manage --wait 60 "$U" && baremetal node provide --wait 60 "$U" || exit 1
baremetal node set "$U" --instance-info image_source=http://127.0.0.1:${IRONIC_HTTP_PORT:-8089}/disk.img \
  --instance-info image_os_hash_algo=sha256 --instance-info image_os_hash_value="$sha" \
  --instance-info image_disk_format=raw
rm -f "$dir/$name.img"; truncate -s 8G "$dir/$name.img"
t0=$(date +%s)
baremetal node deploy "$U" --config-drive '{"meta_data": {"hostname": "ironic-node1", "public_keys": {"k": "ssh-ed25519 AAAA test"}}}'
echo "ipa-api-url=$OS_ENDPOINT ipa-advertise-host=127.0.0.1" >"$dir/$name.cmdline"
timeout 600 "$(dirname "$0")/../../bin/hwimage" ironic-agent --cmdline "$dir/$name.cmdline" --disk "$dir/$name.img" \
  --no-power-off 2>"$dir/log/agent-$name.log" &
agent=$!
for _ in $(seq 1 150); do
  st=$(baremetal node show "$U" -f value -c provision_state)
  case "$st" in active | "deploy failed") break ;; esac
  sleep 2
done
echo "after $(($(date +%s) - t0)) s: $(baremetal node show "$U" -f value -c provision_state); last_error: $(baremetal node show "$U" -f value -c last_error)"
kill "$agent" 2>/dev/null
wait "$agent" 2>/dev/null
grep -E "command .*: (SUCCEEDED|FAILED)" "$dir/log/agent-$name.log" | sed 's/^/  /' >&2
