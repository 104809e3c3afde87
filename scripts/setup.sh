#!/usr/bin/env bash
# Installs everything hwimage needs on a Debian 12 machine, idempotently:
# Debian packages with apt-get (only those missing), npm packages with `npm ci`
# from the committed lock file, then compiles the TypeScript to dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every package a program in src/tools/programs.ts comes from, plus firmware files
# and what QEMU boots need, and what the native addon builds with (libzstd-dev, g++, make),
# and the browsers the dashboard's tests drive through puppeteer-core (chromium; firefox-esr
# for make test-firefox).
# Keep in step with PROGRAMS and HOST_FILES.
PACKAGES=(
  mmdebstrap debian-archive-keyring arch-test e2fsprogs dosfstools mtools gdisk fdisk util-linux
  zstd xz-utils gzip bmap-tools qemu-utils qemu-system-x86 ovmf seabios xorriso
  openssh-client kmod cpio dpkg apt nginx-light ca-certificates openssl curl python3 mount findutils
  libzstd-dev g++ make
  shim-signed grub-efi-amd64-signed grub-common dnsmasq-base
  efibootmgr binutils
  gpg gpg-agent gpgv gpgconf
  chromium firefox-esr
  squid
)

# `scripts/setup.sh --ironic` (make setup-ironic) adds OpenStack Ironic 21.4 and OpenIPMI for
# lab/ironic and make test-ironic only: ~220 packages, ~1.5 min here, so not in a plain setup.
IRONIC_PACKAGES=(ironic-api ironic-conductor ironic-common python3-ironicclient openipmi ipmitool parted genisoimage)
with_ironic=0
[ "${1:-}" = --ironic ] && with_ironic=1 && PACKAGES+=("${IRONIC_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} — run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The ironic packages' postinst would start ironic-api, ironic-conductor, tftpd-hpa and xinetd
  # as system services: a policy-rc.d that refuses (only while installing, only if none exists)
  # keeps them stopped; the lab starts its own Ironic (lab/ironic/start.sh).
  policy_made=0
  if ((with_ironic)) && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_made=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || { ((policy_made)) && rm -f /usr/sbin/policy-rc.d; exit 1; }
  ((policy_made)) && rm -f /usr/sbin/policy-rc.d
  # On a machine booted with systemd they would start at the next boot (and hold port 6385).
  if ((with_ironic)) && [ -d /run/systemd/system ]; then
    systemctl disable --now ironic-api ironic-conductor tftpd-hpa xinetd >&2 2>/dev/null || true
  fi
fi

# npm ci only when the lock file changed since the last install.
# Native packages (better-sqlite3, the addon) build with node-gyp against the running Node's
# headers: without a nodedir node-gyp would download them, and .npmrc's build-from-source=true
# keeps prebuild-install from downloading a binary.
node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node_api.h" ]; then
  export npm_config_nodedir="$node_prefix"
fi
# The same as .npmrc's build-from-source=true, as npm passes it to install scripts (npm 11 warns
# that it will stop reading unknown keys from .npmrc; the environment keeps working).
export npm_config_build_from_source=true
stamp=node_modules/.hwimage-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

# The native addons (native/, binding.gyp): npm ci builds them; again when one is missing or
# their sources changed since the older of the two was built.
rebuild=0
for addon in build/Release/zstd_frames.node build/Release/send_file.node; do
  if [ ! -f "$addon" ] || [ -n "$(find native binding.gyp scripts/build-native.sh -newer "$addon" 2>/dev/null)" ]; then
    rebuild=1
  fi
done
if ((rebuild)); then npm run --silent build:native >&2; fi

node_modules/.bin/tsc -p tsconfig.build.json
