//! The rootfs for each platform the hosts have: the image is prepared for this machine's
//! platform before a run (its facts make the plan); a host of another platform (its
//! `uname -m`) gets the image's variant for that platform, prepared the first time such a host
//! is met.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures_util::future::LocalBoxFuture;
use kubefile::plan::Platform;

use crate::prepare::PreparedImage;
use crate::ssh::{Connection, RemoteCommand};

/// Prepares the image for a platform.
pub type Preparer<'a> =
    Box<dyn Fn(Platform) -> LocalBoxFuture<'a, Result<PreparedImage, String>> + 'a>;

/// The prepared rootfs of every platform met so far.
pub struct PlatformRootfs<'a> {
    primary_platform: Platform,
    primary: PreparedImage,
    others: tokio::sync::Mutex<BTreeMap<String, (PathBuf, String)>>,
    prepare: Preparer<'a>,
}

impl<'a> PlatformRootfs<'a> {
    /// `primary` was prepared for `primary_platform`; `prepare` makes the others.
    pub fn new(primary_platform: Platform, primary: PreparedImage, prepare: Preparer<'a>) -> Self {
        PlatformRootfs {
            primary_platform,
            primary,
            others: tokio::sync::Mutex::new(BTreeMap::new()),
            prepare,
        }
    }

    /// The rootfs directory and content key for the host at the end of `connection`.
    pub async fn for_host(&self, connection: &Connection) -> Result<(PathBuf, String), String> {
        let output = connection
            .run(&RemoteCommand::new("uname -m"))
            .await
            .map_err(|e| e.to_string())?;
        let machine = output.stdout_text();
        let platform = platform_of_machine(machine.trim()).ok_or_else(|| {
            format!(
                "the host's architecture {:?} (uname -m) is not one images are built for",
                machine.trim()
            )
        })?;
        if same_platform(&platform, &self.primary_platform) {
            return Ok((
                self.primary.rootfs.clone(),
                self.primary.facts.content_key.clone(),
            ));
        }
        let mut others = self.others.lock().await;
        let key = platform.to_string();
        if let Some(prepared) = others.get(&key) {
            return Ok(prepared.clone());
        }
        let prepared = (self.prepare)(platform.clone())
            .await
            .map_err(|e| format!("the host is {platform}: {e}"))?;
        let entry = (prepared.rootfs, prepared.facts.content_key);
        others.insert(key, entry.clone());
        Ok(entry)
    }
}

/// Two platforms one rootfs serves: same OS and architecture (variants aside, as pulls do).
fn same_platform(a: &Platform, b: &Platform) -> bool {
    a.os == b.os && a.architecture == b.architecture
}

/// The platform of a Linux host from `uname -m`, as the original maps it.
pub fn platform_of_machine(machine: &str) -> Option<Platform> {
    let (architecture, variant) = match machine {
        "x86_64" | "amd64" => ("amd64", None),
        "aarch64" | "arm64" => ("arm64", None),
        "armv7l" | "armv7" => ("arm", Some("v7")),
        "armv6l" | "armv6" => ("arm", Some("v6")),
        "ppc64le" | "s390x" | "riscv64" | "loongarch64" => (machine, None),
        _ => return None,
    };
    Some(Platform::new("linux", architecture, variant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_map_to_image_platforms() {
        assert_eq!(
            platform_of_machine("x86_64"),
            Some(Platform::new("linux", "amd64", None))
        );
        assert_eq!(
            platform_of_machine("aarch64"),
            Some(Platform::new("linux", "arm64", None))
        );
        assert_eq!(
            platform_of_machine("armv7l"),
            Some(Platform::new("linux", "arm", Some("v7")))
        );
        assert_eq!(platform_of_machine("sparc"), None);
    }
}
