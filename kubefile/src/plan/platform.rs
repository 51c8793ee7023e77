//! Target and build platforms (`os/arch[/variant]`) and the predefined build arguments derived
//! from them (`TARGETPLATFORM`, `TARGETARCH`, ..., and sealer's `ARCH`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// An `os/architecture[/variant]` platform, normalized as Docker does (`x86_64` -> `amd64`,
/// `aarch64` -> `arm64`, `arm64/v8` -> `arm64`, `arm` -> `arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Platform {
    /// Operating system, such as `linux`.
    pub os: String,
    /// Architecture in Go's naming, such as `amd64` or `arm64`.
    pub architecture: String,
    /// CPU variant, such as `v7` for arm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A platform from its parts, normalized.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let os = os.to_ascii_lowercase();
        let (architecture, variant) = normalize_arch(
            &architecture.to_ascii_lowercase(),
            variant.map(str::to_ascii_lowercase).as_deref(),
        );
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// The platform this program runs on.
    pub fn host() -> Self {
        Platform::new(std::env::consts::OS, std::env::consts::ARCH, None)
    }
}

fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant.filter(|v| !v.is_empty());
    match arch {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.map(str::to_owned)),
        "i386" | "i686" | "x86" | "386" => ("386".into(), None),
        "aarch64" | "arm64" => (
            "arm64".into(),
            variant.filter(|v| *v != "v8").map(str::to_owned),
        ),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => (
            "arm".into(),
            Some(variant.map_or_else(|| "7".into(), |v| v.trim_start_matches('v').to_owned()))
                .map(|v| format!("v{v}")),
        ),
        other => (other.to_owned(), variant.map(str::to_owned)),
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(format!(
                "`{text}` is not a platform: expected os/arch or os/arch/variant, such as linux/amd64 or linux/arm/v7"
            ));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The build arguments every Kubefile can use without declaring them.
pub fn predefined_args(target: &Platform, build: &Platform) -> Vec<(String, String)> {
    let mut args = Vec::new();
    for (prefix, platform) in [("TARGET", target), ("BUILD", build)] {
        args.push((format!("{prefix}PLATFORM"), platform.to_string()));
        args.push((format!("{prefix}OS"), platform.os.clone()));
        args.push((format!("{prefix}ARCH"), platform.architecture.clone()));
        args.push((
            format!("{prefix}VARIANT"),
            platform.variant.clone().unwrap_or_default(),
        ));
    }
    args.push(("ARCH".into(), target.architecture.clone()));
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        let p: Platform = "linux/x86_64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(
            "linux/aarch64".parse::<Platform>().unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            "linux/arm".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            "linux/arm/6".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v6"
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v1/x".parse::<Platform>().is_err());
    }

    #[test]
    fn predefined_args_cover_target_and_build() {
        let args = predefined_args(
            &"linux/arm/v7".parse().unwrap(),
            &"linux/amd64".parse().unwrap(),
        );
        let get = |k: &str| args.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("TARGETPLATFORM"), "linux/arm/v7");
        assert_eq!(get("TARGETVARIANT"), "v7");
        assert_eq!(get("BUILDARCH"), "amd64");
        assert_eq!(get("BUILDVARIANT"), "");
        assert_eq!(get("ARCH"), "arm");
    }
}
