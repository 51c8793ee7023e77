//! kubeadm: the configuration `kubeadm init` gets (the image's `etc/kubeadm.yml` merged with
//! the Clusterfile's kubeadm documents) and what its output tells the joins.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use kyaml::Limits;
use serde::{Deserialize, Serialize};

use crate::clusterfile::{Clusterfile, merge_documents};
use crate::plan::install::APISERVER_NAME;
use crate::secret::Secret;

/// Where images keep their kubeadm configuration (rendered from `kubeadm.yml.tmpl`).
const IMAGE_CONFIGS: [&str; 2] = ["etc/kubeadm.yml", "etc/kubeadm.yaml"];

/// The kubeadm configuration for `kubeadm init`: the image's documents with the Clusterfile's
/// documents of the same kind merged in (the Clusterfile's values win), the Clusterfile's
/// other kinds added, and the control plane's name and the registry as image repository
/// where the configuration gives none.
pub fn merged_config(
    rootfs: &Path,
    clusterfile: &Clusterfile,
    env: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut image_text = String::new();
    for name in IMAGE_CONFIGS {
        if let Ok(text) = std::fs::read_to_string(rootfs.join(name)) {
            image_text = text;
            break;
        }
    }
    let documents = kyaml::parse_documents(&image_text, &Limits::default())
        .map_err(|e| format!("the image's kubeadm configuration is not YAML: {e}"))?;
    let mut overlays: Vec<(String, String)> = Vec::new();
    for document in &clusterfile.kubeadm {
        let value = document.root.to_value().map_err(|e| e.to_string())?;
        overlays.push((document.kind.clone(), kyaml::to_yaml(&value)?));
    }
    let mut merged: Vec<(String, String)> = Vec::new();
    for document in documents {
        let kind = document
            .root
            .get("kind")
            .and_then(kyaml::Node::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut text = kyaml::to_yaml(&document.root.to_value().map_err(|e| e.to_string())?)?;
        for (_, overlay) in overlays.iter().filter(|(k, _)| *k == kind) {
            text = merge_documents(&text, overlay)?;
        }
        merged.push((kind, text));
    }
    for (kind, overlay) in overlays {
        if !merged.iter().any(|(k, _)| *k == kind) {
            merged.push((kind, overlay));
        }
    }
    if !merged
        .iter()
        .any(|(kind, _)| kind == "ClusterConfiguration")
    {
        merged.push((
            "ClusterConfiguration".to_owned(),
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n".to_owned(),
        ));
    }
    for (kind, text) in &mut merged {
        if kind != "ClusterConfiguration" {
            continue;
        }
        let value = kyaml::from_yaml(text).map_err(|e| e.to_string())?;
        let has = |key: &str| {
            kyaml::to_json(&value).is_ok_and(|json| json.contains(&format!("\"{key}\":")))
        };
        let mut defaults = String::new();
        if !has("controlPlaneEndpoint") {
            let _ = writeln!(defaults, "controlPlaneEndpoint: {APISERVER_NAME}:6443");
        }
        if !has("imageRepository")
            && let Some(url) = env.get("RegistryURL")
        {
            let _ = writeln!(defaults, "imageRepository: {url}");
        }
        if !defaults.is_empty() {
            *text = merge_documents(text, &defaults)?;
        }
    }
    Ok(merged
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("---\n"))
}

/// What `kubeadm init` prints that the joins need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinInfo {
    /// `--token`.
    pub token: Secret,
    /// `--discovery-token-ca-cert-hash`.
    pub ca_cert_hash: String,
    /// `--certificate-key` (control-plane joins); absent when init ran without
    /// `--upload-certs`.
    pub certificate_key: Option<Secret>,
}

/// Reads the join command and the certificate key from `kubeadm init`'s output; `None` when
/// the output has no join command.
pub fn join_info(output: &str) -> Option<JoinInfo> {
    let words: Vec<&str> = output
        .split(|c: char| c.is_whitespace() || c == '\\')
        .filter(|word| !word.is_empty())
        .collect();
    let after = |flag: &str| {
        words
            .windows(2)
            .find(|pair| pair[0] == flag)
            .map(|pair| pair[1].to_owned())
    };
    let token = after("--token")?;
    let ca_cert_hash = after("--discovery-token-ca-cert-hash")?;
    Some(JoinInfo {
        token: Secret::new(token),
        ca_cert_hash,
        certificate_key: after("--certificate-key").map(Secret::new),
    })
}

/// Reads `kubeadm token create --print-join-command` followed by `kubeadm init phase
/// upload-certs --upload-certs`: the join command, then the certificate key on the line after
/// `Using certificate key:`.
pub fn refreshed_join_info(output: &str) -> Option<JoinInfo> {
    let mut info = join_info(output)?;
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        if line.trim_end().ends_with("Using certificate key:") {
            info.certificate_key = lines
                .next()
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(|key| Secret::new(key.to_owned()));
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clusterfile_s_kubeadm_documents_are_merged_into_the_image_s() {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(rootfs.path().join("etc")).unwrap();
        std::fs::write(
            rootfs.path().join("etc/kubeadm.yml"),
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.32.0\nnetworking:\n  podSubnet: 100.64.0.0/10\n  serviceSubnet: 10.96.0.0/22\n",
        )
        .unwrap();
        let clusterfile = Clusterfile::parse(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: i\n  hosts:\n  - ips: [10.0.0.2]\n    roles: [master]\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: 10.244.0.0/16\n---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n",
            Path::new("Clusterfile"),
        )
        .unwrap();
        let env = BTreeMap::from([("RegistryURL".to_owned(), "sea.hub:5000".to_owned())]);
        let config = merged_config(rootfs.path(), &clusterfile, &env).unwrap();
        assert!(config.contains("podSubnet: 10.244.0.0/16"), "{config}");
        assert!(config.contains("serviceSubnet: 10.96.0.0/22"), "{config}");
        assert!(
            config.contains("controlPlaneEndpoint: apiserver.cluster.local:6443"),
            "{config}"
        );
        assert!(config.contains("imageRepository: sea.hub:5000"), "{config}");
        assert!(config.contains("kind: KubeletConfiguration"), "{config}");
    }

    const INIT_OUTPUT: &str = "\
Your Kubernetes control-plane has initialized successfully!

You can now join any number of control-plane nodes running the following command on each as root:

  kubeadm join apiserver.cluster.local:6443 --token abcdef.0123456789abcdef \\
	--discovery-token-ca-cert-hash sha256:8d1a \\
	--control-plane --certificate-key f2d3

Then you can join any number of worker nodes by running the following on each as root:

kubeadm join apiserver.cluster.local:6443 --token abcdef.0123456789abcdef \\
	--discovery-token-ca-cert-hash sha256:8d1a
";

    #[test]
    fn the_join_flags_are_read_from_init_output() {
        let info = join_info(INIT_OUTPUT).unwrap();
        assert_eq!(info.token.expose(), "abcdef.0123456789abcdef");
        assert_eq!(info.ca_cert_hash, "sha256:8d1a");
        assert_eq!(info.certificate_key.unwrap().expose(), "f2d3");
    }

    #[test]
    fn a_refreshed_join_reads_the_uploaded_certificate_key() {
        let output = "kubeadm join apiserver.cluster.local:6443 --token t.2 --discovery-token-ca-cert-hash sha256:9 \n[upload-certs] Storing the certificates\n[upload-certs] Using certificate key:\nabc123\n";
        let info = refreshed_join_info(output).unwrap();
        assert_eq!(info.token.expose(), "t.2");
        assert_eq!(info.certificate_key.unwrap().expose(), "abc123");
    }

    #[test]
    fn output_without_a_join_command_gives_nothing() {
        assert_eq!(join_info("[init] failed\n"), None);
    }
}
