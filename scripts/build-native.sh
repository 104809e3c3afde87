#!/bin/sh
# Compiles the native addon (binding.gyp, native/) with node-gyp, offline: against the
# headers of the Node that runs it (Debian's and NodeSource's Node keep them in
# PREFIX/include/node) and Debian's libzstd-dev. Run by `npm ci` (the install script) and
# by scripts/setup.sh when native/ changed; node-gyp comes with npm (npm run puts it on PATH).
set -eu
cd "$(dirname "$0")/.."
prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [ -f "$prefix/include/node/node_api.h" ]; then
  exec node-gyp rebuild --nodedir="$prefix" --loglevel=error
fi
if [ -z "${npm_config_nodedir:-}" ]; then
  echo "build-native: no Node headers in $prefix/include/node: install Node.js with its headers, or set npm's nodedir" >&2
  exit 1
fi
exec node-gyp rebuild --loglevel=error
