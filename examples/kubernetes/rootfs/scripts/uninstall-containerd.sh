#!/bin/sh
# Stand-in for the container runtime's uninstall script (run by `sealer delete`).
rootfs=$(cd "$(dirname "$0")/.." && pwd)
"$rootfs"/bin/example-record uninstall-containerd.sh "$@"
