#!/bin/sh
# Serves the image's registry/ directory on the registry host (run by `sealer apply`).
set -e
rootfs=$(cd "$(dirname "$0")/.." && pwd)
exec sealer registry serve --root "$rootfs/registry" --addr ":${RegistryPort:-5000}"
