#!/bin/sh
# Stops the registry init-registry.sh started (run by `sealer delete` on the registry hosts).
rootfs=$(cd "$(dirname "$0")/.." && pwd)
"$rootfs"/bin/example-record clean-registry.sh "$@"
run_dir="$rootfs/../registry-run"
if [ -f "$run_dir/pid" ]; then
    kill "$(cat "$run_dir/pid")" 2>/dev/null || true
fi
rm -rf "$run_dir"
