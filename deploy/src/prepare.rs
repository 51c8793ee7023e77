//! The image made ready for the hosts, on this machine: found in the local store or pulled,
//! its layers applied into a work directory, its `*.tmpl` files rendered with the cluster's
//! environment, the Clusterfile's Config documents written into it, the kubeadm
//! configuration merged, and the facts the plan needs read out of it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::options::PullPolicy;
use image::Reference;
use image::registry::RegistryClient;
use image::store::Store;
use kubefile::plan::{ImageExtension, Platform};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::clusterfile::{Clusterfile, plugins_from_text};
use crate::kubeadm;

/// Why the image could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The image cannot be found, pulled or read.
    #[error("image {image}: {message}")]
    Image {
        /// The image reference.
        image: String,
        /// What failed.
        message: String,
    },
    /// The image is no ClusterImage.
    #[error(
        "image {image} is not a ClusterImage (its manifest has no sealer.image.extension); build it with `sealer-build build`"
    )]
    NotClusterImage {
        /// The image reference.
        image: String,
    },
    /// A file of the rootfs cannot be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A `*.tmpl` file does not render.
    #[error("cannot render {}: {message}", path.display())]
    Template {
        /// The template, relative to the rootfs.
        path: PathBuf,
        /// The template engine's message (line and column included).
        message: String,
    },
    /// A Config document cannot be applied.
    #[error("{0}")]
    Config(String),
    /// The kubeadm configuration cannot be merged.
    #[error("{0}")]
    Kubeadm(String),
    /// A Plugin document in the image's `plugins/` is invalid.
    #[error(
        "image {image}: {message}\nthe image's plugins/ holds this Plugin document: fix it and build the image again"
    )]
    Plugin {
        /// The image reference.
        image: String,
        /// Every problem, with its file, line and column.
        message: String,
    },
}

/// What the plan needs to know about the image; recorded with the applied state, so that a
/// later delete knows it without the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFacts {
    /// The reference the Clusterfile names.
    pub reference: String,
    /// Digest of the platform's manifest.
    pub manifest_digest: String,
    /// Identifies what is distributed: the manifest digest and every file the preparation
    /// rendered or wrote. Hosts holding this key are not sent the rootfs again.
    pub content_key: String,
    /// `cluster.alpha.sealer.io/container-runtime-type`, `docker` when absent.
    pub container_runtime: String,
    /// The file names in the rootfs's `scripts/`.
    pub scripts: BTreeSet<String>,
    /// The image's `ENV`.
    pub env: Vec<(String, String)>,
    /// The sealer extension (apps and launch).
    pub extension: ImageExtension,
    /// `plugins/*.yaml|yml` of the rootfs: (file name, text).
    pub plugin_files: Vec<(String, String)>,
    /// The kubeadm configuration for `kubeadm init` (image's merged with the Clusterfile's).
    pub kubeadm_config: String,
    /// Domains of the container images the image caches (mirrored through the registry).
    pub mirror_domains: Vec<String>,
}

impl ImageFacts {
    /// Whether the rootfs has `scripts/<name>`.
    pub fn has_script(&self, name: &str) -> bool {
        self.scripts.contains(name)
    }
}

/// The prepared image: its facts and the directory holding its rootfs.
#[derive(Debug)]
pub struct PreparedImage {
    /// What the plan needs.
    pub facts: ImageFacts,
    /// The rendered rootfs, ready to be streamed.
    pub rootfs: PathBuf,
}

/// Where the image comes from.
pub struct PrepareOptions<'a> {
    /// The local image store.
    pub store: &'a Store,
    /// The registry client for pulls.
    pub client: &'a RegistryClient,
    /// When to pull.
    pub pull: PullPolicy,
    /// The platform of the hosts.
    pub platform: Platform,
    /// An empty directory the rootfs is prepared in.
    pub work_dir: PathBuf,
}

/// Label naming the container runtime.
const CONTAINER_RUNTIME_LABEL: &str = "cluster.alpha.sealer.io/container-runtime-type";

/// Directories whose `*.tmpl` files are rendered with the cluster's environment.
const TEMPLATE_DIRS: [&str; 3] = ["etc", "charts", "manifests"];

/// Prepares the Clusterfile's image.
pub async fn prepare(
    clusterfile: &Clusterfile,
    options: PrepareOptions<'_>,
) -> Result<PreparedImage, PrepareError> {
    let reference = clusterfile.cluster.image.clone();
    let failed = |message: String| PrepareError::Image {
        image: reference.clone(),
        message,
    };
    let source = engine::base::resolve(
        options.store,
        options.client,
        &reference,
        &options.platform,
        options.pull,
        Arc::new(image::progress::NoProgress),
    )
    .await
    .map_err(|e| failed(e.to_string()))?;
    let extension = source
        .extension
        .clone()
        .ok_or_else(|| PrepareError::NotClusterImage {
            image: reference.clone(),
        })?;
    let manifest_digest = source
        .manifest_digest
        .clone()
        .ok_or_else(|| failed("is scratch".to_owned()))?;

    let rootfs = options.work_dir.join("rootfs");
    let layers: Vec<PathBuf> = source
        .layers()
        .iter()
        .map(|layer| options.store.blob_path(&layer.digest))
        .collect();
    let target = rootfs.clone();
    tokio::task::spawn_blocking(move || engine::rootfs::materialize(&layers, &target))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;

    let image_env = source.env_pairs();
    let env = clusterfile
        .cluster
        .cluster_env(&image_env)
        .map_err(|e| PrepareError::Config(e.to_string()))?;

    let mut written = render_templates(&rootfs, &env)?;
    written.extend(
        clusterfile
            .apply_configs(&rootfs)
            .map_err(|e| PrepareError::Config(e.to_string()))?,
    );
    let kubeadm_config =
        kubeadm::merged_config(&rootfs, clusterfile, &env).map_err(PrepareError::Kubeadm)?;
    let content_key = content_key(&manifest_digest.to_string(), &rootfs, &written)?;

    let container_runtime = source
        .config
        .config
        .labels
        .get(CONTAINER_RUNTIME_LABEL)
        .cloned()
        .unwrap_or_else(|| "docker".to_owned());
    let facts = ImageFacts {
        reference: reference.clone(),
        manifest_digest: manifest_digest.to_string(),
        content_key,
        container_runtime,
        scripts: file_names(&rootfs.join("scripts"))?,
        env: image_env,
        extension,
        plugin_files: plugin_files(&rootfs.join("plugins"), &reference)?,
        kubeadm_config,
        mirror_domains: mirror_domains(
            source
                .container_images
                .iter()
                .map(|image| image.image.as_str()),
        ),
    };
    Ok(PreparedImage { facts, rootfs })
}

/// Renders every `*.tmpl` under the template directories into the file without the suffix;
/// returns the files written, relative to the rootfs.
fn render_templates(
    rootfs: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Vec<PathBuf>, PrepareError> {
    let mut written = Vec::new();
    for dir in TEMPLATE_DIRS {
        let mut pending = vec![rootfs.join(dir)];
        while let Some(dir) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(PrepareError::File { path: dir, source }),
            };
            for entry in entries {
                let entry = entry.map_err(|source| PrepareError::File {
                    path: dir.clone(),
                    source,
                })?;
                let path = entry.path();
                let kind = entry.file_type().map_err(|source| PrepareError::File {
                    path: path.clone(),
                    source,
                })?;
                if kind.is_dir() {
                    pending.push(path);
                } else if kind.is_file() && path.extension().is_some_and(|e| e == "tmpl") {
                    written.push(render_one(rootfs, &path, env)?);
                }
            }
        }
    }
    written.sort();
    Ok(written)
}

/// Renders one template next to itself.
fn render_one(
    rootfs: &Path,
    path: &Path,
    env: &BTreeMap<String, String>,
) -> Result<PathBuf, PrepareError> {
    let relative = path.strip_prefix(rootfs).unwrap_or(path).to_path_buf();
    let text = fs::read_to_string(path).map_err(|source| PrepareError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let rendered = scan::sources::template::render(&relative.display().to_string(), &text, env)
        .map_err(|e| PrepareError::Template {
            path: relative.clone(),
            message: e.to_string(),
        })?;
    let output = path.with_extension("");
    fs::write(&output, rendered).map_err(|source| PrepareError::File {
        path: output.clone(),
        source,
    })?;
    Ok(output.strip_prefix(rootfs).unwrap_or(&output).to_path_buf())
}

/// The digest of the manifest and of every prepared file (path and content).
fn content_key(
    manifest_digest: &str,
    rootfs: &Path,
    written: &[PathBuf],
) -> Result<String, PrepareError> {
    let mut hasher = Sha256::new();
    hasher.update(manifest_digest.as_bytes());
    let mut written = written.to_vec();
    written.sort();
    written.dedup();
    for relative in written {
        let path = rootfs.join(&relative);
        let bytes = fs::read(&path).map_err(|source| PrepareError::File { path, source })?;
        hasher.update(relative.display().to_string().as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Names of the regular files in `dir` (none when it does not exist).
fn file_names(dir: &Path) -> Result<BTreeSet<String>, PrepareError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(source) => {
            return Err(PrepareError::File {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut names = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|source| PrepareError::File {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().is_ok_and(|kind| kind.is_file()) {
            names.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

/// The YAML files of the image's `plugins/`, in name order; each must read as Plugin
/// documents.
fn plugin_files(dir: &Path, image: &str) -> Result<Vec<(String, String)>, PrepareError> {
    let mut files = Vec::new();
    for name in file_names(dir)? {
        let extension = Path::new(&name).extension().and_then(|e| e.to_str());
        if extension
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
        {
            let path = dir.join(&name);
            let text =
                fs::read_to_string(&path).map_err(|source| PrepareError::File { path, source })?;
            let label = format!("plugins/{name}");
            plugins_from_text(&text, Path::new(&label)).map_err(|e| PrepareError::Plugin {
                image: image.to_owned(),
                message: e.to_string(),
            })?;
            files.push((label, text));
        }
    }
    Ok(files)
}

/// The registry domains of `images`, once each, in order.
fn mirror_domains<'a>(images: impl Iterator<Item = &'a str>) -> Vec<String> {
    let domains: BTreeSet<String> = images
        .filter_map(|image| Reference::parse(image).ok())
        .map(|reference| reference.registry().to_owned())
        .collect();
    domains.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_rendered_next_to_themselves_and_change_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc/sub")).unwrap();
        fs::create_dir_all(root.join("scripts")).unwrap();
        fs::write(
            root.join("etc/sub/a.yaml.tmpl"),
            "url: {{ .RegistryURL }}\n",
        )
        .unwrap();
        fs::write(root.join("scripts/x.tmpl"), "{{ .Left }}\n").unwrap();
        let env = BTreeMap::from([("RegistryURL".to_owned(), "sea.hub:5000".to_owned())]);
        let written = render_templates(root, &env).unwrap();
        assert_eq!(written, vec![PathBuf::from("etc/sub/a.yaml")]);
        assert_eq!(
            fs::read_to_string(root.join("etc/sub/a.yaml")).unwrap(),
            "url: sea.hub:5000\n"
        );
        assert!(!root.join("scripts/x").exists(), "scripts/ is not rendered");

        let first = content_key("sha256:1", root, &written).unwrap();
        let env = BTreeMap::from([("RegistryURL".to_owned(), "other:5000".to_owned())]);
        let written = render_templates(root, &env).unwrap();
        assert_ne!(content_key("sha256:1", root, &written).unwrap(), first);
    }

    #[test]
    fn an_invalid_plugin_of_the_image_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: sealer.io/v1\nkind: Plugin\nmetadata:\n  name: ok\nspec:\n  type: SHELL\n  action: post-install\n  data: echo ok\n",
        )
        .unwrap();
        fs::write(dir.path().join("notes.txt"), "not a plugin").unwrap();
        assert_eq!(
            plugin_files(dir.path(), "example").unwrap().len(),
            1,
            "YAML files only"
        );
        fs::write(
            dir.path().join("b.yml"),
            "apiVersion: sealer.io/v1\nkind: Plugin\nmetadata:\n  name: bad\nspec:\n  type: SHELL\n  action: post-nowhere\n  data: echo bad\n",
        )
        .unwrap();
        let error = plugin_files(dir.path(), "example").unwrap_err().to_string();
        assert!(
            error.starts_with("image example: plugins/b.yml:7:")
                && error.contains("post-nowhere")
                && error.contains("build the image again"),
            "{error}"
        );
    }

    #[test]
    fn a_template_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("manifests")).unwrap();
        fs::write(dir.path().join("manifests/m.yaml.tmpl"), "{{ .Missing }}").unwrap();
        let error = render_templates(dir.path(), &BTreeMap::new()).unwrap_err();
        assert!(
            error.to_string().contains("manifests/m.yaml.tmpl"),
            "{error}"
        );
    }

    #[test]
    fn mirror_domains_are_the_registries_once_each() {
        let domains = mirror_domains(
            [
                "registry.k8s.io/pause:3.10",
                "nginx:1",
                "docker.io/library/busybox:1",
                "registry.k8s.io/etcd:3",
            ]
            .into_iter(),
        );
        assert_eq!(domains, vec!["docker.io", "registry.k8s.io"]);
    }
}
