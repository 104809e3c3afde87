#!/usr/bin/env bash
# manual e2e run
set -uo pipefail
cd /work/main
R=/tmp/ironic/run
lab/ironic/stop.sh $R >/dev/null 2>&1
rm -rf $R; mkdir -p $R
eval "$(lab/ironic/start.sh $R)" || exit 1
export OS_BAREMETAL_API_VERSION=latest
IMG=/work/main/.cache/test-image
mkdir -p /tmp/ironic/images
ln -sf $IMG/debian-12-server-amd64.img /tmp/ironic/images/disk.img
ln -sf $IMG/debian-12-server-amd64.img.bmap /tmp/ironic/images/disk.img.bmap
setsid python3 -m http.server 8090 --bind 192.0.2.2 --directory /tmp/ironic/images >$R/log/images-http.log 2>&1 </dev/null &
echo $! > $R/images-http.pid
sha=$(awk '$2 == "debian-12-server-amd64.img" {print $1}' $IMG/SHA256SUMS)
truncate -s 8G $R/node1.img
LAB_SSH_GUEST=10.0.2.50 lab/ironic/bmc.sh $R node1 6231 $R/node1.img 52:54:00:12:34:01 2222 19999 || exit 1
U=$(baremetal node create --driver ipmi --name node1 \
  --driver-info ipmi_address=127.0.0.1 --driver-info ipmi_port=6231 \
  --driver-info ipmi_username=admin --driver-info ipmi_password=password \
  --driver-info deploy_kernel=file:///tmp/ironic/deploy-env/vmlinuz \
  --driver-info deploy_ramdisk=file:///tmp/ironic/deploy-env/initrd \
  --driver-info "kernel_append_params=console=ttyS0 ipa-advertise-host=127.0.0.1 ipa-advertise-port=19999" \
  --property capabilities=boot_mode:uefi -f value -c uuid) || exit 1
echo node $U
baremetal port create --node $U 52:54:00:12:34:01 >/dev/null || exit 1
baremetal node manage --wait 60 $U && baremetal node provide --wait 120 $U || exit 1
baremetal node set $U --instance-info image_source=http://192.0.2.2:8090/disk.img \
  --instance-info image_os_hash_algo=sha256 --instance-info image_os_hash_value="$sha" \
  --instance-info image_disk_format=raw
t0=$(date +%s)
baremetal node deploy $U --config-drive /tmp/ironic/configdrive.b64 || exit 1
last=""
for _ in $(seq 1 600); do
  st=$(baremetal node show $U -f value -c provision_state)
  [ "$st" != "$last" ] && { echo "$(( $(date +%s) - t0 )) s: $st"; last=$st; }
  case "$st" in active | "deploy failed") break ;; esac
  sleep 2
done
baremetal node show $U -f value -c last_error
