//! Command-line flags, following docker/buildx conventions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Build, inspect and ship ClusterImages.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The local image store (default: $SEALER_ROOT, /var/lib/sealer as root, else
    /// $XDG_DATA_HOME/sealer).
    #[arg(long, global = true, env = "SEALER_ROOT", hide_env_values = true)]
    pub root: Option<PathBuf>,

    /// Reach this registry (host[:port]) over plain HTTP; loopback registries always are.
    #[arg(long = "insecure-registry", global = true, value_name = "REGISTRY")]
    pub insecure_registries: Vec<String>,

    /// Verify registries' TLS certificates.
    #[arg(long, global = true, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,

    /// Fetch images of a registry from a mirror instead, as SOURCE=MIRROR (such as
    /// `docker.io=127.0.0.1:5000`); names and digests stay those of the source. Repeatable.
    #[arg(long = "registry-mirror", global = true, value_name = "SOURCE=MIRROR")]
    pub registry_mirrors: Vec<String>,

    /// Blobs transferred at once.
    #[arg(long, global = true, default_value_t = 8)]
    pub jobs: usize,

    /// Print only results, no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a ClusterImage from a Kubefile into the local store (no daemon needed).
    Build(Box<BuildArgs>),
    /// Parse a Kubefile and print its build plan as JSON.
    Parse(KubefileArgs),
    /// Report every problem in a Kubefile; fails only on errors, not on warnings.
    Lint(KubefileArgs),
    /// Pull an image from a registry into the local store.
    Pull(PullArgs),
    /// Push an image of the local store to a registry.
    Push(PushArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// List the images of the local store.
    Images(ImagesArgs),
    /// Show an image's manifest, config and sealer metadata.
    Inspect(InspectArgs),
    /// Remove image names (and, with --prune, the blobs nothing uses any more).
    Rmi(RmiArgs),
    /// Delete blobs no image uses, and leftover partial downloads.
    Prune,
    /// Store credentials for a registry (in Docker's config, or its credential helper).
    Login(LoginArgs),
    /// Remove the credentials of a registry.
    Logout(LogoutArgs),
    /// Write images to an archive (OCI or `docker save` format).
    Save(SaveArgs),
    /// Load images from an OCI archive or a `docker save` archive.
    Load(LoadArgs),
    /// Write the merged root filesystem of an image into a directory.
    Export(ExportArgs),
    /// Run the built-in registry.
    Registry(RegistryArgs),
    /// Install, scale or upgrade a cluster as a Clusterfile describes it (over SSH).
    Apply(ApplyArgs),
    /// Install a cluster from an image and host lists (or a Clusterfile).
    Run(Box<RunArgs>),
    /// Add hosts to an installed cluster.
    #[command(name = "scale-up", visible_alias = "join")]
    ScaleUp(ScaleUpArgs),
    /// Remove hosts from a cluster, or the whole cluster (-a).
    Delete(DeleteArgs),
    /// Run a shell command on the hosts of an installed cluster.
    Exec(ExecArgs),
}

/// How the cluster commands reach the hosts.
#[derive(Debug, Args)]
pub struct HostAccessArgs {
    /// The known_hosts file host keys are checked against (default ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Accept and record the key of a host not yet in known_hosts (first contact). A changed
    /// key is refused all the same.
    #[arg(long)]
    pub insecure_accept_new_host_keys: bool,
    /// Hosts worked on at the same time.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub parallel: usize,
    /// Print the plan (phases, hosts, commands) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `apply`
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The Clusterfile.
    #[arg(
        short = 'f',
        long = "Clusterfile",
        visible_alias = "clusterfile",
        value_name = "FILE",
        default_value = "Clusterfile"
    )]
    pub clusterfile: PathBuf,
    /// Remove hosts the Clusterfile no longer lists without asking.
    #[arg(long)]
    pub force: bool,
    /// How to reach the hosts.
    #[command(flatten)]
    pub access: HostAccessArgs,
}

/// SSH login of hosts given on the command line.
#[derive(Debug, Args)]
pub struct SshLoginArgs {
    /// SSH user.
    #[arg(short = 'u', long, default_value = "root")]
    pub user: String,
    /// SSH password (prefer a key: a password on the command line is seen by other users).
    #[arg(
        short = 'p',
        long = "passwd",
        env = "SEALER_SSH_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// SSH port.
    #[arg(long, default_value_t = 22)]
    pub port: u16,
    /// SSH private key file.
    #[arg(long = "pk", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Passphrase of the private key.
    #[arg(
        long = "pk-passwd",
        env = "SEALER_SSH_KEY_PASSPHRASE",
        hide_env_values = true
    )]
    pub key_passphrase: Option<String>,
}

/// Hosts given on the command line.
#[derive(Debug, Args)]
pub struct HostListArgs {
    /// Masters: IPs and first-last ranges, comma-separated (10.0.0.2,10.0.0.5-10.0.0.7).
    #[arg(short = 'm', long, value_name = "IPS")]
    pub masters: Option<String>,
    /// Workers: IPs and first-last ranges, comma-separated.
    #[arg(short = 'n', long, value_name = "IPS")]
    pub nodes: Option<String>,
}

/// `run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The ClusterImage (not needed with -f).
    pub image: Option<String>,
    /// A Clusterfile (then the other flags are not used).
    #[arg(
        short = 'f',
        long = "Clusterfile",
        visible_alias = "clusterfile",
        value_name = "FILE"
    )]
    pub clusterfile: Option<PathBuf>,
    /// The cluster's name.
    #[arg(long, default_value = "my-cluster")]
    pub name: String,
    /// The hosts.
    #[command(flatten)]
    pub hosts: HostListArgs,
    /// Cluster environment (NAME=VALUE), repeatable.
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// How to log in.
    #[command(flatten)]
    pub login: SshLoginArgs,
    /// How to reach the hosts.
    #[command(flatten)]
    pub access: HostAccessArgs,
}

/// `scale-up` / `join`
#[derive(Debug, Args)]
pub struct ScaleUpArgs {
    /// The cluster (default: the only one recorded on this machine).
    #[arg(long = "cluster")]
    pub cluster: Option<String>,
    /// The hosts.
    #[command(flatten)]
    pub hosts: HostListArgs,
    /// How to reach the hosts.
    #[command(flatten)]
    pub access: HostAccessArgs,
}

/// `delete`
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Delete the whole cluster.
    #[arg(short = 'a', long, conflicts_with_all = ["masters", "nodes"])]
    pub all: bool,
    /// The hosts.
    #[command(flatten)]
    pub hosts: HostListArgs,
    /// The Clusterfile (when nothing is recorded on this machine).
    #[arg(
        short = 'f',
        long = "Clusterfile",
        visible_alias = "clusterfile",
        value_name = "FILE"
    )]
    pub clusterfile: Option<PathBuf>,
    /// The cluster (default: the only one recorded on this machine).
    #[arg(long = "cluster")]
    pub cluster: Option<String>,
    /// Remove the cluster's directory (rootfs, registry data) from the hosts too.
    #[arg(short = 'p', long)]
    pub prune: bool,
    /// Do not ask.
    #[arg(long)]
    pub force: bool,
    /// How to reach the hosts.
    #[command(flatten)]
    pub access: HostAccessArgs,
}

/// `exec`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The cluster (default: the only one recorded on this machine).
    #[arg(short = 'c', long = "cluster")]
    pub cluster: Option<String>,
    /// Only hosts with one of these roles (comma list).
    #[arg(short = 'r', long = "roles", value_name = "ROLES")]
    pub roles: Option<String>,
    /// The command (run with sh -c on each host).
    #[arg(required = true, trailing_var_arg = true)]
    pub command: Vec<String>,
    /// How to reach the hosts.
    #[command(flatten)]
    pub access: HostAccessArgs,
}

/// `registry`
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RegistryCommand,
}

/// The registry subcommands.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve a registry storage directory over the distribution v2 API until SIGINT/SIGTERM.
    Serve(ServeArgs),
}

/// `registry serve`: flags override the config file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A config file in distribution's format (registry_config.yml): http.addr,
    /// http.tls.certificate/key, auth.htpasswd.path, storage.filesystem.rootdirectory, proxy.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The address to listen on (default 0.0.0.0:5000).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// The storage directory (the one holding docker/registry/v2).
    #[arg(long, value_name = "DIR")]
    pub storage: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require basic authentication from clients, checked against this htpasswd file
    /// (bcrypt entries, as `htpasswd -B` writes them).
    #[arg(long, value_name = "FILE")]
    pub htpasswd: Option<PathBuf>,
    /// Accept pushes (uploads and manifests); off by default.
    #[arg(long)]
    pub enable_push: bool,
}

/// Which Kubefile to read and how to resolve it.
#[derive(Debug, Args)]
pub struct KubefileArgs {
    /// The build context directory.
    #[arg(default_value = ".")]
    pub context: PathBuf,

    /// The Kubefile (default: CONTEXT/Kubefile; `-` reads standard input).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,

    /// Set a build argument (NAME=value, or NAME to take it from the environment).
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,

    /// The platform to plan for (os/arch[/variant]); default: this machine's.
    #[arg(long)]
    pub platform: Option<String>,

    /// The image type.
    #[arg(long = "type", default_value = "kube-installer", value_parser = ["kube-installer", "app-installer"])]
    pub image_type: String,

    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Human)]
    pub format: DiagnosticFormat,
}

/// Diagnostic output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    /// The source line with a caret and advice.
    Human,
    /// One `file:line:column: severity: message` line each.
    Short,
    /// A JSON array.
    Json,
}

/// Output formats of listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Table,
    /// JSON for programs.
    Json,
}

/// `pull`
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image reference.
    pub image: String,
    /// The platform to pull from a multi-platform image (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
}

/// `push`
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The local image.
    pub image: String,
    /// Where to push it (default: its own name).
    pub destination: Option<String>,
}

/// `tag`
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image to name.
    pub source: String,
    /// New names.
    #[arg(required = true)]
    pub targets: Vec<String>,
}

/// `images`: the local images, or (given a build context) the images a build would cache.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// A build context: list the container images a build of it would cache (found in
    /// manifests/, image lists, charts/, application/apps/ and images/), instead of the
    /// images in the local store.
    pub context: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// What the scan is told.
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Show where each image was found.
    #[arg(long)]
    pub why: bool,
    /// Fail (exit 1) when a chart could only be scanned partially.
    #[arg(long)]
    pub strict: bool,
}

/// What the image scanner is told: values and image lists.
#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    /// A values file for a chart of the context, as CHART=FILE (CHART: its Chart.yaml name
    /// or its path in the context). Repeatable, applied in order.
    #[arg(long = "values", value_name = "CHART=FILE")]
    pub values: Vec<String>,
    /// A value for a chart, in Helm's --set syntax, as CHART.KEY=VALUE. Repeatable.
    #[arg(long = "set", value_name = "CHART.KEY=VALUE")]
    pub set: Vec<String>,
    /// Like --set, but the value is always a string.
    #[arg(long = "set-string", value_name = "CHART.KEY=VALUE")]
    pub set_string: Vec<String>,
    /// An extra image list file (one reference per line). Repeatable.
    #[arg(long = "image-list", value_name = "FILE")]
    pub image_lists: Vec<PathBuf>,
    /// A file of images not to cache (one reference per line), besides the context's
    /// .sealerignore. Repeatable.
    #[arg(long = "ignored-image-list", value_name = "FILE")]
    pub ignored_image_lists: Vec<PathBuf>,
}

/// `build`
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context directory.
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// The Kubefile (default: CONTEXT/Kubefile).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Name of the image (NAME[:TAG]); repeatable. Needed unless `--buildkit` writes only
    /// `--output`s.
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Set a build argument (NAME=value, or NAME to take it from the environment).
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    /// Target platforms (os/arch[/variant], comma-separated or repeated); one image each, under
    /// an index when there are several. Default: this machine's.
    #[arg(long, value_delimiter = ',')]
    pub platform: Vec<String>,
    /// When to pull the base image: always, missing (when the store lacks it) or never.
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// `all` caches every container image the rootfs needs; `lite` skips it.
    #[arg(long, default_value = "all", value_parser = ["all", "lite"])]
    pub build_mode: String,
    /// Run every step again instead of reusing the build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// The image type.
    #[arg(long = "type", default_value = "kube-installer", value_parser = ["kube-installer", "app-installer"])]
    pub image_type: String,
    /// A label for the image config (KEY=VALUE); repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// An annotation for the manifest (KEY=VALUE); repeatable.
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// How RUN commands are isolated: `none` runs them on this machine as they are;
    /// `namespace` gives them private mount, PID (and with --network=none, network)
    /// namespaces. Either way they run on the build host, not in a container.
    #[arg(long, default_value = "none", value_parser = ["none", "namespace"])]
    pub isolation: String,
    /// Compression of the layers made from the context and by RUN: zstd (fast; pulled by
    /// containerd 1.5+, Docker 23+, sealer), gzip (for older runtimes), none.
    /// Default zstd; with `--buildkit`, only for a standalone BuildKit's image exporter.
    #[arg(long, value_parser = ["gzip", "zstd", "none"])]
    pub compression: Option<String>,
    /// Push every tag once built.
    #[arg(long)]
    pub push: bool,
    /// Also write the image elsewhere: `type=oci,dest=FILE` (an OCI archive); with
    /// `--buildkit` also `type=local,dest=DIR` (the rootfs) and `type=tar,dest=FILE` (the
    /// rootfs as a tar; `-` is standard output). Repeatable.
    #[arg(long = "output", value_name = "type=TYPE,dest=PATH")]
    pub exports: Vec<String>,
    /// Print the summary as a table or as JSON.
    #[arg(short = 'o', long = "format", value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// What the image scanner is told.
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Build through BuildKit instead of the embedded engine: `docker` (the daemon at
    /// $DOCKER_HOST), `unix:///run/buildkit/buildkitd.sock` or `tcp://HOST:PORT` (a
    /// standalone buildkitd). Without a value: $BUILDKIT_HOST, else docker.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
    pub buildkit: Option<String>,
    /// How to build through BuildKit.
    #[command(flatten)]
    pub buildkit_options: BuildkitArgs,
}

/// The default frontend image: the release matching this CLI.
pub const DEFAULT_FRONTEND_IMAGE: &str =
    concat!("ghcr.io/sealer-rs/frontend:", env!("CARGO_PKG_VERSION"));

/// Options of builds through BuildKit (`build --buildkit`).
#[derive(Debug, Args)]
#[command(next_help_heading = "BuildKit")]
pub struct BuildkitArgs {
    /// The Kubefile frontend image BuildKit runs.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_FRONTEND_IMAGE, requires = "buildkit", overrides_with = "frontend_image")]
    pub frontend_image: String,
    /// How to show the build's steps.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, requires = "buildkit", overrides_with = "progress")]
    pub progress: ProgressMode,
    /// The network of RUN steps and image fetches: default (BuildKit's sandbox), host or
    /// none. `host` needs the daemon to allow it (Docker does).
    #[arg(long, value_parser = ["default", "host", "none"], requires = "buildkit")]
    pub network: Option<String>,
    /// An extra /etc/hosts entry for RUN steps, as HOST:IP. Repeatable.
    #[arg(long = "add-host", value_name = "HOST:IP", requires = "buildkit")]
    pub add_hosts: Vec<String>,
    /// The CA certificate (PEM) a `tcp://` BuildKit's certificate is checked against.
    #[arg(long = "buildkit-tls-ca", value_name = "FILE", requires = "buildkit")]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for a `tcp://` BuildKit.
    #[arg(long = "buildkit-tls-cert", value_name = "FILE", requires = "buildkit")]
    pub tls_cert: Option<PathBuf>,
    /// The key (PEM) of --buildkit-tls-cert.
    #[arg(long = "buildkit-tls-key", value_name = "FILE", requires = "buildkit")]
    pub tls_key: Option<PathBuf>,
    /// The name the `tcp://` BuildKit's certificate must carry (default: its host).
    #[arg(
        long = "buildkit-tls-server-name",
        value_name = "NAME",
        requires = "buildkit"
    )]
    pub tls_server_name: Option<String>,
    /// How the session reaches Docker's BuildKit: its `/session` endpoint (http), or
    /// inside the Control service's Session stream (grpc, as standalone BuildKit does).
    #[arg(long = "buildkit-session", value_enum, default_value_t = SessionTransport::Http, hide = true, requires = "buildkit")]
    pub session: SessionTransport,
}

/// How build steps are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// `tty` on a terminal, else `plain`.
    Auto,
    /// One line per event, as `docker build --progress plain` prints them.
    Plain,
    /// Running steps redrawn in place (plain lines when standard error is not a terminal).
    Tty,
    /// Nothing but errors.
    Quiet,
}

/// How the session reaches Docker's BuildKit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SessionTransport {
    /// Docker's `/session` HTTP upgrade.
    Http,
    /// The Control service's Session stream.
    Grpc,
}

/// `inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image (name or digest prefix).
    pub image: String,
}

/// `rmi`
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove (names or digest prefixes).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove every name of an image given by digest.
    #[arg(short, long)]
    pub force: bool,
    /// Also delete the blobs nothing uses any more.
    #[arg(short, long)]
    pub prune: bool,
}

/// `login`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry (host[:port]); default Docker Hub.
    #[arg(default_value = "docker.io")]
    pub registry: String,
    /// User name.
    #[arg(short, long)]
    pub username: String,
    /// Password (prefer --password-stdin: a password on the command line is seen by others).
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `logout`
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (host[:port]); default Docker Hub.
    #[arg(default_value = "docker.io")]
    pub registry: String,
}

/// Archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchiveFormat {
    /// An OCI image layout in a tar.
    Oci,
    /// The format of `docker save`.
    Docker,
}

/// `save`
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The archive to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The archive format.
    #[arg(long, value_enum, default_value_t = ArchiveFormat::Oci)]
    pub format: ArchiveFormat,
    /// Images to save.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `load`
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The archive to read.
    #[arg(short, long)]
    pub input: PathBuf,
}

/// `export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The image.
    pub image: String,
    /// The directory to write its root filesystem into (created when missing; must be empty).
    pub directory: PathBuf,
}
