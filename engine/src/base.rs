//! The base image (`FROM`) and images `COPY --from` reads: found in the local store or pulled,
//! with what a build inherits from them (layers, config, sealer metadata).

use std::sync::Arc;

use image::manifest::{Descriptor, ImageConfig, Manifest, is_index};
use image::progress::Progress;
use image::registry::{PullOptions, RegistryClient};
use image::store::{Store, StoreError};
use image::{Digest, Reference};
use kubefile::plan::{BaseImage, EnvVar, ImageExtension, Platform};

use crate::error::BuildError;
use crate::metadata::{self, ContainerImage};
use crate::options::PullPolicy;

/// A resolved image: its manifest (for one platform) and what a build inherits from it.
#[derive(Debug, Clone)]
pub struct SourceImage {
    /// Digest of the platform's manifest; `None` for `scratch`.
    pub manifest_digest: Option<Digest>,
    /// The manifest; an empty one for `scratch`.
    pub manifest: Manifest,
    /// The image config (the platform's defaults for `scratch`).
    pub config: ImageConfig,
    /// The sealer extension, for a ClusterImage.
    pub extension: Option<ImageExtension>,
    /// The container images a base ClusterImage already carries.
    pub container_images: Vec<ContainerImage>,
}

impl SourceImage {
    /// The empty image.
    pub fn scratch(platform: &Platform) -> Self {
        SourceImage {
            manifest_digest: None,
            manifest: Manifest {
                schema_version: 2,
                media_type: None,
                config: Descriptor::of(image::manifest::OCI_CONFIG, b"{}"),
                layers: Vec::new(),
                annotations: std::collections::BTreeMap::new(),
            },
            config: ImageConfig {
                architecture: platform.architecture.clone(),
                os: platform.os.clone(),
                variant: platform.variant.clone(),
                ..ImageConfig::default()
            },
            extension: None,
            container_images: Vec::new(),
        }
    }

    /// What the build plan inherits.
    pub fn plan_base(&self) -> BaseImage {
        let env = self
            .config
            .config
            .env
            .iter()
            .map(|entry| {
                let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
                EnvVar {
                    name: name.to_owned(),
                    value: value.to_owned(),
                }
            })
            .collect();
        BaseImage {
            env,
            labels: self.config.config.labels.clone(),
            applications: self
                .extension
                .as_ref()
                .map(|e| e.applications.clone())
                .unwrap_or_default(),
            extension_env: self
                .extension
                .as_ref()
                .map(|e| e.env.clone())
                .unwrap_or_default(),
        }
    }

    /// The layers, lowest first.
    pub fn layers(&self) -> &[Descriptor] {
        &self.manifest.layers
    }
}

/// Finds `image` for `platform` in the store or pulls it, as `policy` says.
pub async fn resolve(
    store: &Store,
    client: &RegistryClient,
    image: &str,
    platform: &Platform,
    policy: PullPolicy,
    progress: Arc<dyn Progress>,
) -> Result<SourceImage, BuildError> {
    let failed = |message: String| BuildError::Image {
        image: image.to_owned(),
        message,
    };
    let name = Reference::parse(image).map_err(|e| failed(e.to_string()))?;
    let local = match policy {
        PullPolicy::Always => None,
        PullPolicy::Missing | PullPolicy::Never => local_manifest(store, &name, platform)?,
    };
    let descriptor = match local {
        Some(descriptor) => descriptor,
        None if policy == PullPolicy::Never => {
            return Err(failed(format!(
                "not in the local store for {platform}, and --pull never forbids pulling it"
            )));
        }
        None => {
            let options = PullOptions {
                platform: platform.clone(),
            };
            image::registry::pull(client, store, &name, &options, progress)
                .await
                .map_err(|e| failed(e.to_string()))?
                .descriptor
        }
    };
    read_image(store, &descriptor.digest).map_err(|e| failed(e.to_string()))
}

/// The manifest of `name` for `platform` in the store, if it is there.
fn local_manifest(
    store: &Store,
    name: &Reference,
    platform: &Platform,
) -> Result<Option<Descriptor>, BuildError> {
    let stored = match store.resolve(name) {
        Ok(stored) => stored,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let descriptor = if is_index(&stored.descriptor.media_type) {
        match store
            .read_index_document(&stored.descriptor.digest)?
            .select(platform)
        {
            Some(child) => child.clone(),
            None => return Ok(None),
        }
    } else {
        stored.descriptor
    };
    if !store.missing_blobs(&descriptor)?.is_empty() {
        return Ok(None);
    }
    let manifest = store.read_manifest(&descriptor.digest)?;
    let config: ImageConfig = read_json(store, &manifest.config.digest, "image config")?;
    let stored_platform =
        Platform::new(&config.os, &config.architecture, config.variant.as_deref());
    let matches = stored_platform == *platform
        || (stored_platform.os == platform.os
            && stored_platform.architecture == platform.architecture);
    Ok(matches.then_some(descriptor))
}

/// Reads a stored image's manifest, config and sealer metadata.
fn read_image(store: &Store, manifest_digest: &Digest) -> Result<SourceImage, StoreError> {
    let manifest = store.read_manifest(manifest_digest)?;
    let config: ImageConfig = read_json(store, &manifest.config.digest, "image config")?;
    let extension = annotation_json(&manifest, metadata::EXTENSION_ANNOTATION, manifest_digest)?;
    let container_images = annotation_json(
        &manifest,
        metadata::CONTAINER_IMAGES_ANNOTATION,
        manifest_digest,
    )?
    .unwrap_or_default();
    Ok(SourceImage {
        manifest_digest: Some(manifest_digest.clone()),
        manifest,
        config,
        extension,
        container_images,
    })
}

/// The JSON value of a manifest annotation, when the manifest has it.
fn annotation_json<T: serde::de::DeserializeOwned>(
    manifest: &Manifest,
    key: &'static str,
    manifest_digest: &Digest,
) -> Result<Option<T>, StoreError> {
    manifest
        .annotations
        .get(key)
        .map(|text| {
            serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
                what: key,
                digest: manifest_digest.clone(),
                reason: format!("annotation: {e}"),
            })
        })
        .transpose()
}

fn read_json<T: serde::de::DeserializeOwned>(
    store: &Store,
    digest: &Digest,
    what: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_slice(&store.read_blob(digest)?).map_err(|e| StoreError::Corrupt {
        what,
        digest: digest.clone(),
        reason: e.to_string(),
    })
}
