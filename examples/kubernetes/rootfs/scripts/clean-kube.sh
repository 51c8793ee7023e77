#!/bin/sh
# Undoes init-kube.sh on a host (run by `sealer delete` after `kubeadm reset`): removes what
# it installed and puts back what it replaced.
rootfs=$(cd "$(dirname "$0")/.." && pwd)
"$rootfs"/bin/example-record clean-kube.sh "$@"
backup="$rootfs/../host-backup"
rm -f /usr/bin/kubeadm /usr/bin/kubectl /usr/bin/kubelet /usr/bin/example-record \
    /etc/systemd/system/kubelet.service
rmdir /etc/systemd/system /etc/systemd 2>/dev/null || true
if [ -d "$backup" ]; then
    (cd "$backup" && find . ! -type d ! -name .taken) | while read -r path; do
        mkdir -p "$(dirname "${path#.}")"
        cp -a "$backup/$path" "${path#.}"
    done
    rm -rf "$backup"
fi
