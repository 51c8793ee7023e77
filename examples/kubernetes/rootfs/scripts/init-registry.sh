#!/bin/bash
# Serves the image's registry/ directory on the registry host (run by `sealer apply` as
# `init-registry.sh <port> <registry data dir> <domain>`): starts Debian's docker-registry in
# the background, replacing one an earlier run started, and waits until it answers. It serves
# TLS with certs/<domain>.crt and .key when apply installed them (the Clusterfile's registry
# is not `insecure`), plain HTTP otherwise; it requires the credentials of
# etc/registry_htpasswd when apply installed one (the Clusterfile gives a username and
# password).
set -e
port="$1"
data="$2"
domain="$3"
rootfs=$(cd "$(dirname "$0")/.." && pwd)
"$rootfs"/bin/example-record init-registry.sh "$@"
run_dir="$rootfs/../registry-run"
mkdir -p "$run_dir"
if [ -f "$run_dir/pid" ]; then
    kill "$(cat "$run_dir/pid")" 2>/dev/null || true
fi
tls=""
if [ -f "$rootfs/certs/$domain.crt" ]; then
    tls=", tls: {certificate: $rootfs/certs/$domain.crt, key: $rootfs/certs/$domain.key}"
fi
auth=""
if [ -f "$rootfs/etc/registry_htpasswd" ]; then
    auth="auth: {htpasswd: {realm: sealer-registry, path: $rootfs/etc/registry_htpasswd}}"
fi
cat >"$run_dir/config.yml" <<CONFIG
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $data}, delete: {enabled: false}}
http: {addr: ":$port"$tls}
$auth
CONFIG
setsid docker-registry serve "$run_dir/config.yml" >"$run_dir/log" 2>&1 </dev/null &
echo $! >"$run_dir/pid"
for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then exit 0; fi
    sleep 0.1
done
echo "docker-registry did not start on port $port: $(cat "$run_dir/log")" >&2
exit 1
