#!/bin/sh
# Stand-in for the container runtime's install script (run by `sealer apply` on every host):
# the real one unpacks containerd from cri/ and starts it.
set -e
rootfs=$(cd "$(dirname "$0")/.." && pwd)
"$rootfs"/bin/example-record containerd.sh "$@"
