//! The example ClusterImages (`examples/`) in tests: where they are and the upstream images
//! they name (stand-ins are pushed to a loopback mirror under `mirror_path`).

use std::path::{Path, PathBuf};

/// The images the kubernetes example lists (`examples/kubernetes/rootfs/manifests/imageList`).
pub const KUBE_IMAGES: [&str; 7] = [
    "registry.k8s.io/kube-apiserver:v1.32.0",
    "registry.k8s.io/kube-controller-manager:v1.32.0",
    "registry.k8s.io/kube-scheduler:v1.32.0",
    "registry.k8s.io/kube-proxy:v1.32.0",
    "registry.k8s.io/pause:3.10",
    "registry.k8s.io/etcd:3.5.16-0",
    "registry.k8s.io/coredns/coredns:v1.11.3",
];

/// The directory of the example `name` (`examples/NAME`).
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// `registry.k8s.io/pause:3.10` → `pause:3.10`: where a mirror holds an upstream image.
pub fn mirror_path(reference: &str) -> &str {
    reference
        .split_once('/')
        .map_or(reference, |(_, path)| path)
}
