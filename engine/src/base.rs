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
            manifest: empty_manifest(),
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

    /// The config's `Env` as (name, value) pairs, in order.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.config
            .config
            .env
            .iter()
            .map(|entry| {
                let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
                (name.to_owned(), value.to_owned())
            })
            .collect()
    }

    /// What the build plan inherits.
    pub fn plan_base(&self) -> BaseImage {
        let env = self
            .env_pairs()
            .into_iter()
            .map(|(name, value)| EnvVar { name, value })
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

    /// An image known only by its config (as BuildKit resolves one): its sealer metadata
    /// comes from the config labels; the manifest is left empty.
    pub fn from_config(config: ImageConfig) -> Result<Self, String> {
        let manifest = empty_manifest();
        let extension = metadata_value(&manifest, &config, metadata::EXTENSION_ANNOTATION)?;
        let container_images =
            metadata_value(&manifest, &config, metadata::CONTAINER_IMAGES_ANNOTATION)?
                .unwrap_or_default();
        Ok(SourceImage {
            manifest_digest: None,
            manifest,
            config,
            extension,
            container_images,
        })
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
    let extension = metadata_json(
        &manifest,
        &config,
        metadata::EXTENSION_ANNOTATION,
        manifest_digest,
    )?;
    let container_images = metadata_json(
        &manifest,
        &config,
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

/// The JSON value of a sealer metadata entry: the manifest annotation, else the config label
/// of the same name (an image built by Docker has no annotations).
fn metadata_json<T: serde::de::DeserializeOwned>(
    manifest: &Manifest,
    config: &ImageConfig,
    key: &str,
    manifest_digest: &Digest,
) -> Result<Option<T>, StoreError> {
    metadata_value(manifest, config, key).map_err(|reason| StoreError::Corrupt {
        what: "image",
        digest: manifest_digest.clone(),
        reason,
    })
}

/// [`metadata_json`]'s lookup; the error says which entry is not valid JSON.
fn metadata_value<T: serde::de::DeserializeOwned>(
    manifest: &Manifest,
    config: &ImageConfig,
    key: &str,
) -> Result<Option<T>, String> {
    let place = if manifest.annotations.contains_key(key) {
        "manifest annotation"
    } else {
        "config label"
    };
    metadata::sealer_metadata_text(&manifest.annotations, &config.config.labels, key)
        .map(|text| {
            serde_json::from_str(text)
                .map_err(|e| format!("its {place} {key} is not the JSON sealer writes there: {e}"))
        })
        .transpose()
}

/// The manifest of an image without layers.
fn empty_manifest() -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: None,
        config: Descriptor::of(image::manifest::OCI_CONFIG, b"{}"),
        layers: Vec::new(),
        annotations: std::collections::BTreeMap::new(),
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use image::manifest::{OCI_CONFIG, OCI_MANIFEST};
    use kubefile::plan::{EXTENSION_SCHEMA_VERSION, ImageType, LaunchSpec};

    use super::*;
    use crate::metadata::{
        CONTAINER_IMAGES_ANNOTATION, EXTENSION_ANNOTATION, ImagePlatform, container_images_json,
        extension_json,
    };

    fn extension(image_type: ImageType) -> ImageExtension {
        ImageExtension {
            schema_version: EXTENSION_SCHEMA_VERSION.to_owned(),
            image_type,
            applications: Vec::new(),
            launch: LaunchSpec::default(),
            env: BTreeMap::from([("NAMESPACE".to_owned(), "demo".to_owned())]),
        }
    }

    fn listed(image: &str) -> Vec<ContainerImage> {
        vec![ContainerImage {
            image: image.to_owned(),
            app_name: String::new(),
            platform: ImagePlatform::from(&Platform::new("linux", "amd64", None)),
        }]
    }

    /// Stores an image with these config labels and manifest annotations; returns its digest.
    fn store_image(
        store: &Store,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    ) -> Digest {
        let mut config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..ImageConfig::default()
        };
        config.config.labels = labels;
        let config_bytes = serde_json::to_vec(&config).unwrap();
        store.write_blob(&config_bytes).unwrap();
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_owned()),
            config: Descriptor::of(OCI_CONFIG, &config_bytes),
            layers: Vec::new(),
            annotations,
        };
        store
            .write_blob(&serde_json::to_vec(&manifest).unwrap())
            .unwrap()
    }

    #[test]
    fn a_base_without_annotations_gives_its_metadata_from_config_labels() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let images = listed("docker.io/library/nginx:1.25");
        let labels = BTreeMap::from([
            (
                EXTENSION_ANNOTATION.to_owned(),
                extension_json(&extension(ImageType::AppInstaller)),
            ),
            (
                CONTAINER_IMAGES_ANNOTATION.to_owned(),
                container_images_json(&images).unwrap(),
            ),
        ]);
        let digest = store_image(&store, labels, BTreeMap::new());
        let image = read_image(&store, &digest).unwrap();
        assert_eq!(image.extension, Some(extension(ImageType::AppInstaller)));
        assert_eq!(image.container_images, images);
        assert_eq!(image.plan_base().extension_env["NAMESPACE"], "demo");
    }

    #[test]
    fn annotations_come_before_labels_and_bad_json_names_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let labels = BTreeMap::from([
            (
                EXTENSION_ANNOTATION.to_owned(),
                extension_json(&extension(ImageType::AppInstaller)),
            ),
            (
                CONTAINER_IMAGES_ANNOTATION.to_owned(),
                container_images_json(&listed("docker.io/library/from-label:1")).unwrap(),
            ),
        ]);
        let annotations = BTreeMap::from([
            (
                EXTENSION_ANNOTATION.to_owned(),
                extension_json(&extension(ImageType::KubeInstaller)),
            ),
            (
                CONTAINER_IMAGES_ANNOTATION.to_owned(),
                container_images_json(&listed("docker.io/library/annotated:1")).unwrap(),
            ),
        ]);
        let digest = store_image(&store, labels, annotations);
        let image = read_image(&store, &digest).unwrap();
        assert_eq!(image.extension, Some(extension(ImageType::KubeInstaller)));
        assert_eq!(
            image.container_images,
            listed("docker.io/library/annotated:1")
        );

        let labels = BTreeMap::from([(EXTENSION_ANNOTATION.to_owned(), "not json".to_owned())]);
        let digest = store_image(&store, labels, BTreeMap::new());
        let message = read_image(&store, &digest).unwrap_err().to_string();
        assert!(
            message.contains(&digest.to_string())
                && message.contains("config label sealer.image.extension"),
            "{message}"
        );
    }

    #[test]
    fn a_base_without_sealer_metadata_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store_image(&store, BTreeMap::new(), BTreeMap::new());
        let image = read_image(&store, &digest).unwrap();
        assert_eq!(image.extension, None);
        assert!(image.container_images.is_empty());
    }
}
