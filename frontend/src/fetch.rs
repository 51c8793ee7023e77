//! `cache-images` mode: what the fetch steps of a build run (`/run cache-images ...` in the
//! frontend image, see `llb::lower::cache_images`). It writes one image, or the images of an
//! archive, into the output directory as `engine::fetch_to_dir` lays them out.

use std::path::PathBuf;
use std::sync::Arc;

use engine::cache_images::CacheImagesError;
use image::reference::Reference;
use image::registry::{RegistryClient, RegistryError, RegistryOptions, parse_mirror};
use kubefile::plan::Platform;

/// The argument selecting this mode.
pub use llb::lower::cache_images::SUBCOMMAND;

/// What to fetch, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchArgs {
    /// `--platform`: the platform the images are for.
    pub platform: Platform,
    /// `--out`: the output directory.
    pub out: PathBuf,
    /// `--registry-mirror SOURCE=MIRROR`, repeatable.
    pub mirrors: Vec<(String, String)>,
    /// The image reference, or `--archive PATH`.
    pub source: FetchFrom,
}

/// The image or archive to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchFrom {
    /// An image in its registry.
    Registry(Reference),
    /// An image archive.
    Archive(PathBuf),
}

impl FetchArgs {
    /// Parses the arguments after `cache-images`.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, String> {
        let mut args = args.into_iter();
        let mut platform = None;
        let mut out = None;
        let mut mirrors = Vec::new();
        let mut source = None;
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
            match arg.as_str() {
                "--platform" => {
                    platform = Some(
                        value("--platform")?
                            .parse::<Platform>()
                            .map_err(|e| format!("--platform: {e}"))?,
                    );
                }
                "--out" => out = Some(PathBuf::from(value("--out")?)),
                "--registry-mirror" => mirrors.push(parse_mirror(&value("--registry-mirror")?)?),
                "--archive" => {
                    source = Some(FetchFrom::Archive(PathBuf::from(value("--archive")?)));
                }
                flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
                image => {
                    let reference = Reference::parse(image).map_err(|e| e.to_string())?;
                    source = Some(FetchFrom::Registry(reference));
                }
            }
        }
        Ok(FetchArgs {
            platform: platform.ok_or("--platform is required")?,
            out: out.ok_or("--out is required")?,
            mirrors,
            source: source.ok_or("an image reference or --archive PATH is required")?,
        })
    }
}

/// Fetches as `args` say; the error is the message for the step's output.
pub async fn fetch(args: FetchArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("creating {}: {e}", args.out.display()))?;
    match &args.source {
        FetchFrom::Registry(reference) => {
            let client = RegistryClient::new(RegistryOptions {
                mirrors: args.mirrors.iter().cloned().collect(),
                ..RegistryOptions::default()
            });
            let progress: Arc<dyn image::progress::Progress> =
                Arc::new(image::progress::NoProgress);
            let fetched = engine::fetch_to_dir::fetch_image_to_dir(
                &client,
                reference,
                &args.platform,
                &args.out,
                progress,
            )
            .await
            .map_err(|e| {
                let refused = matches!(&e, CacheImagesError::Resolve(failures)
                    if failures.iter().any(|f| matches!(f.error, RegistryError::Unauthorized { .. })));
                let hint = if refused {
                    "; in a BuildKit build, credentials reach this step only as the build secret `registry-auth` (docker build --secret id=registry-auth,src=$HOME/.docker/config.json)"
                } else {
                    ""
                };
                format!("{reference}: {e}{hint}")
            })?;
            eprintln!("fetched {} ({})", fetched.reference, fetched.top.digest);
        }
        FetchFrom::Archive(path) => {
            let fetched = engine::fetch_to_dir::fetch_archive_to_dir(path, &args.out)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for image in fetched {
                eprintln!("fetched {} ({})", image.reference, image.top.digest);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<FetchArgs, String> {
        FetchArgs::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn a_registry_fetch_parses_with_mirrors() {
        let args = parse(&[
            "--platform",
            "linux/arm64",
            "--out",
            "/out",
            "--registry-mirror",
            "docker.io=127.0.0.1:5000",
            "nginx:1.25",
        ])
        .expect("parsed");
        assert_eq!(args.platform.architecture, "arm64");
        assert_eq!(
            args.mirrors,
            [("docker.io".to_owned(), "127.0.0.1:5000".to_owned())]
        );
        assert_eq!(
            args.source,
            FetchFrom::Registry(
                Reference::parse("docker.io/library/nginx:1.25").expect("reference")
            )
        );
    }

    #[test]
    fn missing_or_unknown_arguments_are_errors() {
        assert!(
            parse(&["--out", "/out", "x"])
                .unwrap_err()
                .contains("--platform")
        );
        assert!(
            parse(&["--platform", "linux/amd64", "--out", "/o"])
                .unwrap_err()
                .contains("--archive")
        );
        assert!(parse(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(
            parse(&["--platform"])
                .unwrap_err()
                .contains("needs a value")
        );
    }
}
