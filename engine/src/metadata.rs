//! The image config and manifest of a built ClusterImage, with the sealer metadata the
//! original tool reads: the `sealer.image.extension` and `sealer.image.container.images`
//! manifest annotations and the `cluster.alpha.sealer.io/*` labels.
//!
//! The extension and the container image list are also written as config labels of the same
//! names and the same JSON text: an image exported by Docker (a BuildKit build through the
//! gateway frontend) carries no manifest annotations, and must still be usable as a base.
//! These two labels are always the computed ones: a `LABEL sealer.image.extension=...` (or
//! `--label`) is replaced, and a `sealer.image.container.images` label is dropped when the
//! image carries no container images. Readers take the annotation first, then the label
//! ([`sealer_metadata_text`]).

use std::collections::BTreeMap;

use image::Digest;
use image::manifest::{Descriptor, ImageConfig, Manifest, OCI_CONFIG, OCI_MANIFEST};
use kubefile::plan::{BuildPlan, ImageExtension, Platform};
use serde::{Deserialize, Serialize};

/// Manifest annotation, and config label, holding the image extension (type, apps, launch,
/// env).
pub const EXTENSION_ANNOTATION: &str = "sealer.image.extension";
/// Manifest annotation, and config label, listing the container images cached in the image.
pub const CONTAINER_IMAGES_ANNOTATION: &str = "sealer.image.container.images";
/// Label the original tool sets by default to the version of the builder.
pub const VERSION_LABEL: &str = "io.sealer.version";

/// One entry of the container image list annotation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContainerImage {
    /// The full reference.
    pub image: String,
    /// The app the image belongs to, when it was found in an app's files.
    #[serde(rename = "appName", default, skip_serializing_if = "String::is_empty")]
    pub app_name: String,
    /// The platform it was cached for.
    pub platform: ImagePlatform,
}

/// The platform of a cached image, as the annotation spells it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImagePlatform {
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `linux`.
    pub os: String,
    /// `v7`, `v8`, or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl From<&Platform> for ImagePlatform {
    fn from(platform: &Platform) -> Self {
        ImagePlatform {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone().unwrap_or_default(),
        }
    }
}

/// The extension annotation's JSON: the plan's extension and the builder that wrote it.
#[derive(Serialize)]
struct ExtensionAnnotation<'a> {
    #[serde(rename = "buildClient")]
    build_client: BuildClient,
    #[serde(flatten)]
    extension: &'a ImageExtension,
}

#[derive(Serialize)]
struct BuildClient {
    #[serde(rename = "sealerVersion")]
    sealer_version: String,
}

/// The builder's version string, as recorded in the image.
pub fn builder_version() -> String {
    format!("sealer-rs {}", env!("CARGO_PKG_VERSION"))
}

/// The JSON text of the extension annotation and label: `extension` with the builder that
/// wrote it.
pub fn extension_json(extension: &ImageExtension) -> String {
    let annotation = ExtensionAnnotation {
        build_client: BuildClient {
            sealer_version: builder_version(),
        },
        extension,
    };
    serde_json::to_string(&annotation).unwrap_or_default()
}

/// The JSON text of the container image list annotation and label; `None` when the list is
/// empty (the image then carries neither).
pub fn container_images_json(container_images: &[ContainerImage]) -> Option<String> {
    (!container_images.is_empty())
        .then(|| serde_json::to_string(container_images).unwrap_or_default())
}

/// The text of a sealer metadata entry (`key` is [`EXTENSION_ANNOTATION`] or
/// [`CONTAINER_IMAGES_ANNOTATION`]): the manifest annotation, else the config label of the
/// same name (all an image built by Docker carries).
pub fn sealer_metadata_text<'a>(
    annotations: &'a BTreeMap<String, String>,
    labels: &'a BTreeMap<String, String>,
    key: &str,
) -> Option<&'a str> {
    annotations
        .get(key)
        .or_else(|| labels.get(key))
        .map(String::as_str)
}

/// One layer of the image being built, with its history line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLayer {
    /// The blob's descriptor.
    pub descriptor: Descriptor,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// What made it (`COPY charts/ charts/`, `cache docker.io/library/nginx:1.25`).
    pub created_by: String,
}

/// The config of the new image: the base config with the plan's env, labels and author, the
/// platform, the timestamp and the new layers. The labels are the plan's, then
/// `extra_labels`, then the computed sealer metadata labels (the plan's extension and
/// `container_images`, see the module documentation), which nothing overrides.
pub fn image_config(
    base: &ImageConfig,
    plan: &BuildPlan,
    extra_labels: &BTreeMap<String, String>,
    container_images: &[ContainerImage],
    layers: &[BuiltLayer],
    timestamp: u64,
) -> ImageConfig {
    let created = rfc3339(timestamp);
    let mut config = base.clone();
    config.architecture.clone_from(&plan.platform.architecture);
    config.os.clone_from(&plan.platform.os);
    config.variant.clone_from(&plan.platform.variant);
    config.created = Some(created.clone());
    if plan.config.author.is_some() {
        config.author.clone_from(&plan.config.author);
    }
    config.config.env = plan
        .config
        .env
        .iter()
        .map(|var| format!("{}={}", var.name, var.value))
        .collect();
    let mut labels = plan.config.labels.clone();
    labels
        .entry(VERSION_LABEL.to_owned())
        .or_insert_with(builder_version);
    labels.extend(extra_labels.clone());
    labels.insert(
        EXTENSION_ANNOTATION.to_owned(),
        extension_json(&plan.extension),
    );
    match container_images_json(container_images) {
        Some(text) => labels.insert(CONTAINER_IMAGES_ANNOTATION.to_owned(), text),
        None => labels.remove(CONTAINER_IMAGES_ANNOTATION),
    };
    config.config.labels = labels;
    config
        .rootfs
        .diff_ids
        .extend(layers.iter().map(|l| l.diff_id.clone()));
    config.history.extend(layers.iter().map(|layer| {
        serde_json::json!({
            "created": created,
            "created_by": layer.created_by,
            "comment": builder_version(),
        })
    }));
    config
}

/// The manifest of the new image: base layers then the new ones, and the sealer annotations.
pub fn image_manifest(
    config_bytes: &[u8],
    layers: Vec<Descriptor>,
    extension: &ImageExtension,
    container_images: &[ContainerImage],
    extra_annotations: &BTreeMap<String, String>,
) -> Manifest {
    let mut annotations = BTreeMap::new();
    annotations.insert(EXTENSION_ANNOTATION.to_owned(), extension_json(extension));
    if let Some(text) = container_images_json(container_images) {
        annotations.insert(CONTAINER_IMAGES_ANNOTATION.to_owned(), text);
    }
    annotations.extend(extra_annotations.clone());
    Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: Descriptor::of(OCI_CONFIG, config_bytes),
        layers,
        annotations,
    }
}

/// Seconds since the epoch as an RFC 3339 UTC time (`1970-01-01T00:00:00Z`).
pub fn rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's method).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    fn plan(kubefile: &str) -> BuildPlan {
        let context = kubefile::context::MemoryContext::new();
        let options = kubefile::plan::PlanOptions::new(&context);
        let planned =
            kubefile::parse_and_plan(&kubefile::SourceFile::new("Kubefile", kubefile), &options);
        planned.plan.expect("the test Kubefile plans")
    }

    fn nginx() -> ContainerImage {
        ContainerImage {
            image: "docker.io/library/nginx:1.25".into(),
            app_name: String::new(),
            platform: ImagePlatform::from(&Platform::new("linux", "amd64", None)),
        }
    }

    #[test]
    fn the_config_carries_the_sealer_metadata_as_labels_equal_to_the_annotations() {
        let plan = plan("FROM scratch\nLABEL team=platform\nENV NAMESPACE=demo\n");
        let images = [nginx()];
        let config = image_config(
            &ImageConfig::default(),
            &plan,
            &BTreeMap::new(),
            &images,
            &[],
            0,
        );
        let manifest = image_manifest(
            b"{}",
            Vec::new(),
            &plan.extension,
            &images,
            &BTreeMap::new(),
        );
        let labels = &config.config.labels;
        assert_eq!(labels["team"], "platform");
        for key in [EXTENSION_ANNOTATION, CONTAINER_IMAGES_ANNOTATION] {
            assert_eq!(labels[key], manifest.annotations[key], "{key}");
        }
        let extension: ImageExtension =
            serde_json::from_str(&labels[EXTENSION_ANNOTATION]).unwrap();
        assert_eq!(extension, plan.extension);
        assert_eq!(extension.env["NAMESPACE"], "demo");
    }

    #[test]
    fn user_labels_never_override_the_computed_sealer_metadata() {
        let plan = plan(
            "FROM scratch\nLABEL sealer.image.extension=mine sealer.image.container.images=[]\n",
        );
        let extra = BTreeMap::from([(EXTENSION_ANNOTATION.to_owned(), "flag".to_owned())]);
        let config = image_config(&ImageConfig::default(), &plan, &extra, &[], &[], 0);
        let labels = &config.config.labels;
        assert_eq!(
            labels[EXTENSION_ANNOTATION],
            extension_json(&plan.extension)
        );
        assert!(
            !labels.contains_key(CONTAINER_IMAGES_ANNOTATION),
            "no images, no list: {labels:?}"
        );
        let config = image_config(&ImageConfig::default(), &plan, &extra, &[nginx()], &[], 0);
        assert_eq!(
            config.config.labels[CONTAINER_IMAGES_ANNOTATION],
            container_images_json(&[nginx()]).unwrap()
        );
    }

    #[test]
    fn container_images_serialize_as_the_original_does() {
        let image = ContainerImage {
            image: "docker.io/library/nginx:1.25".into(),
            app_name: "web".into(),
            platform: ImagePlatform::from(&Platform::new("linux", "amd64", None)),
        };
        assert_eq!(
            serde_json::to_string(&[image]).unwrap(),
            r#"[{"image":"docker.io/library/nginx:1.25","appName":"web","platform":{"architecture":"amd64","os":"linux"}}]"#
        );
    }
}
