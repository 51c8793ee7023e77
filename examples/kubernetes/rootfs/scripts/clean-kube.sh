#!/bin/sh
# Undoes init-kube.sh on a host (run by `sealer delete` after `kubeadm reset`).
rootfs=$(cd "$(dirname "$0")/.." && pwd)
"$rootfs"/bin/example-record clean-kube.sh "$@"
rm -f /usr/bin/kubeadm /usr/bin/kubectl /usr/bin/kubelet /usr/bin/example-record \
    /etc/systemd/system/kubelet.service
rmdir /etc/systemd/system /etc/systemd 2>/dev/null || true
