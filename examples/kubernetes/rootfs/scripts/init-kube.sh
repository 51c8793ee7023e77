#!/bin/sh
# Installs the kubelet unit and binaries on a host (run by `sealer apply`). What it replaces
# is kept once in <cluster dir>/host-backup, and clean-kube.sh puts it back.
set -e
rootfs=$(cd "$(dirname "$0")/.." && pwd)
"$rootfs"/bin/example-record init-kube.sh "$@"
backup="$rootfs/../host-backup"
installed="/usr/bin/kubeadm /usr/bin/kubectl /usr/bin/kubelet /usr/bin/example-record /etc/systemd/system/kubelet.service"
if [ ! -f "$backup/.taken" ]; then
    mkdir -p "$backup"
    for path in $installed; do
        if [ -e "$path" ] || [ -L "$path" ]; then
            mkdir -p "$backup$(dirname "$path")"
            cp -a "$path" "$backup$path"
        fi
    done
    touch "$backup/.taken"
fi
install -m 0755 "$rootfs"/bin/kubeadm "$rootfs"/bin/kubectl "$rootfs"/bin/kubelet \
    "$rootfs"/bin/example-record /usr/bin/
mkdir -p /etc/systemd/system
install -m 0644 "$rootfs"/etc/kubelet.service /etc/systemd/system/kubelet.service
