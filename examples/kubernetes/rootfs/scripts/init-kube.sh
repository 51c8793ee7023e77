#!/bin/sh
# Installs the kubelet unit and binaries on a host (run by `sealer apply`).
set -e
rootfs=$(cd "$(dirname "$0")/.." && pwd)
"$rootfs"/bin/example-record init-kube.sh "$@"
install -m 0755 "$rootfs"/bin/kubeadm "$rootfs"/bin/kubectl "$rootfs"/bin/kubelet \
    "$rootfs"/bin/example-record /usr/bin/
mkdir -p /etc/systemd/system
install -m 0644 "$rootfs"/etc/kubelet.service /etc/systemd/system/kubelet.service
