//! Thin helpers around `/usr/bin/skopeo` for loopback registries: TLS verification is off and
//! no signature policy is read (`--insecure-policy`). Each helper returns skopeo's standard
//! output or panics with its standard error.
//!
//! References use skopeo's transports: `docker://127.0.0.1:5000/x:1`, `oci:/path:tag`,
//! `dir:/path`.
//!
//! ```no_run
//! use testkit::skopeo::{self, Skopeo};
//! let raw = skopeo::inspect_raw("docker://127.0.0.1:5000/library/nginx:1.25");
//! Skopeo::new()
//!     .creds("user:secret")
//!     .override_arch("amd64")
//!     .copy("docker://127.0.0.1:5000/pause:3.9", "oci:/tmp/pause:3.9");
//! ```

use std::process::Command;

/// The skopeo binary of Debian's `skopeo` package.
pub const SKOPEO: &str = "/usr/bin/skopeo";

/// Options shared by every skopeo invocation: source credentials and a platform override.
#[derive(Debug, Clone, Default)]
pub struct Skopeo {
    creds: Option<String>,
    override_arch: Option<String>,
}

impl Skopeo {
    /// No credentials, the host's platform.
    pub fn new() -> Self {
        Skopeo::default()
    }

    /// Sends `user:password` to the source registry (`--creds` / `--src-creds`).
    #[must_use]
    pub fn creds(mut self, user_password: &str) -> Self {
        self.creds = Some(user_password.to_owned());
        self
    }

    /// Picks this architecture from an index (`--override-arch`).
    #[must_use]
    pub fn override_arch(mut self, arch: &str) -> Self {
        self.override_arch = Some(arch.to_owned());
        self
    }

    /// The manifest or index bytes exactly as served (`skopeo inspect --raw`).
    pub fn inspect_raw(&self, reference: &str) -> String {
        self.try_inspect_raw(reference)
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// Like [`Skopeo::inspect_raw`], with the failure message instead of a panic.
    pub fn try_inspect_raw(&self, reference: &str) -> Result<String, String> {
        self.run(&self.source_args("inspect", &["--raw", reference]))
    }

    /// Skopeo's summary of an image (`skopeo inspect`): digest, architecture, layers, ...
    pub fn inspect(&self, reference: &str) -> serde_json::Value {
        let output = self
            .run(&self.source_args("inspect", &[reference]))
            .unwrap_or_else(|failure| panic!("{failure}"));
        serde_json::from_str(&output).unwrap_or_else(|e| {
            panic!("skopeo inspect {reference} printed no JSON ({e}): {output}")
        })
    }

    /// The tags of a repository (`skopeo list-tags docker://host/repo`).
    pub fn list_tags(&self, repository: &str) -> Vec<String> {
        let output = self
            .run(&self.source_args("list-tags", &[repository]))
            .unwrap_or_else(|failure| panic!("{failure}"));
        let listing: serde_json::Value = serde_json::from_str(&output)
            .unwrap_or_else(|e| panic!("skopeo list-tags {repository} printed no JSON ({e})"));
        listing["Tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Copies an image (`skopeo copy src dest`); of an index, the instance of this machine's
    /// platform.
    pub fn copy(&self, src: &str, dest: &str) {
        self.copy_with(&[], src, dest);
    }

    /// Copies an image with every instance of an index (`skopeo copy --all src dest`).
    pub fn copy_all(&self, src: &str, dest: &str) {
        self.copy_with(&["--all"], src, dest);
    }

    fn copy_with(&self, extra: &[&str], src: &str, dest: &str) {
        let mut args = vec!["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
        args.extend(extra);
        if let Some(creds) = &self.creds {
            args.extend(["--src-creds", creds]);
        }
        args.extend([src, dest]);
        if let Err(failure) = self.run(&args) {
            panic!("{failure}");
        }
    }

    /// `command` with TLS verification off and the credentials, then `rest`.
    fn source_args<'a>(&'a self, command: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![command, "--tls-verify=false"];
        if let Some(creds) = &self.creds {
            args.extend(["--creds", creds]);
        }
        args.extend(rest);
        args
    }

    /// Runs skopeo with the global options first; standard output on success, else a message
    /// with the command line, exit status and standard error.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new(SKOPEO);
        command.arg("--insecure-policy");
        if let Some(arch) = &self.override_arch {
            command.args(["--override-arch", arch]);
        }
        command.args(args);
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("run {SKOPEO} (package skopeo): {e}"));
        if output.status.success() {
            String::from_utf8(output.stdout)
                .map_err(|e| format!("skopeo {} printed non-UTF-8 output: {e}", args.join(" ")))
        } else {
            Err(format!(
                "skopeo {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            ))
        }
    }
}

/// [`Skopeo::inspect_raw`] without credentials.
pub fn inspect_raw(reference: &str) -> String {
    Skopeo::new().inspect_raw(reference)
}

/// [`Skopeo::inspect`] without credentials.
pub fn inspect(reference: &str) -> serde_json::Value {
    Skopeo::new().inspect(reference)
}

/// [`Skopeo::copy`] without credentials.
pub fn copy(src: &str, dest: &str) {
    Skopeo::new().copy(src, dest);
}
