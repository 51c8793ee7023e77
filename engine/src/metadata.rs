//! The image config and manifest of a built ClusterImage, with the sealer metadata the
//! original tool reads: the `sealer.image.extension` and `sealer.image.container.images`
//! manifest annotations and the `cluster.alpha.sealer.io/*` labels.

use std::collections::BTreeMap;

use image::Digest;
use image::manifest::{Descriptor, ImageConfig, Manifest, OCI_CONFIG, OCI_MANIFEST};
use kubefile::plan::{BuildPlan, ImageExtension, Platform};
use serde::{Deserialize, Serialize};

/// Manifest annotation holding the image extension (type, apps, launch, env).
pub const EXTENSION_ANNOTATION: &str = "sealer.image.extension";
/// Manifest annotation listing the container images cached in the image.
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
/// platform, the timestamp and the new layers.
pub fn image_config(
    base: &ImageConfig,
    plan: &BuildPlan,
    extra_labels: &BTreeMap<String, String>,
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
    let extension = ExtensionAnnotation {
        build_client: BuildClient {
            sealer_version: builder_version(),
        },
        extension,
    };
    annotations.insert(
        EXTENSION_ANNOTATION.to_owned(),
        serde_json::to_string(&extension).unwrap_or_default(),
    );
    if !container_images.is_empty() {
        annotations.insert(
            CONTAINER_IMAGES_ANNOTATION.to_owned(),
            serde_json::to_string(container_images).unwrap_or_default(),
        );
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
