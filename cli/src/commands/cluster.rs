//! The cluster commands of `sealer`: `apply`, `run`, `scale-up`, `delete`, `exec`.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use deploy::apply::{self, Options, Outcome};
use deploy::run::Report;

use crate::flags::{
    ApplyArgs, DeleteArgs, ExecArgs, GlobalArgs, HostAccessArgs, RunArgs, ScaleUpArgs,
};

/// Progress lines on standard error (standard output keeps the plan of `--dry-run`).
struct Lines {
    quiet: bool,
}

impl Report for Lines {
    fn line(&self, text: &str) {
        if !self.quiet {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "{text}");
        }
    }
}

/// Prints a plan on standard output.
struct PlanOutput;

impl Report for PlanOutput {
    fn line(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
    }
}

/// Where cluster state is recorded: `$SEALER_HOME`, else `~/.sealer`.
fn home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("SEALER_HOME") {
        return Ok(PathBuf::from(home));
    }
    let user_home = std::env::var_os("HOME").context("HOME is not set; set SEALER_HOME")?;
    Ok(PathBuf::from(user_home).join(".sealer"))
}

/// Appends the SSH layer's record of every connection and command (host, command with
/// secrets redacted, exit status, duration) to `<home>/log/sealer.log`, mode 0600.
fn start_command_log(home: &std::path::Path) -> Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = home.join("log");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("sealer.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open the log {}", path.display()))?;
    // A second command in the same process keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    Ok(path)
}

fn known_hosts(access: &HostAccessArgs) -> PathBuf {
    access
        .known_hosts
        .clone()
        .unwrap_or_else(deploy::ssh::default_known_hosts_path)
}

/// Runs a cluster command with the options every one shares.
fn with_options<T>(
    global: &GlobalArgs,
    access: &HostAccessArgs,
    force: bool,
    work: impl AsyncFnOnce(&Options<'_>) -> Result<T>,
) -> Result<T> {
    let store = super::store(global)?;
    let client = super::registry_client(global)?;
    let progress = Lines {
        quiet: global.quiet,
    };
    let report: &dyn Report = if access.dry_run {
        &PlanOutput
    } else {
        &progress
    };
    let home = home()?;
    if !access.dry_run {
        start_command_log(&home)?;
    }
    let options = Options {
        home,
        store: &store,
        client: &client,
        pull: engine::options::PullPolicy::Missing,
        known_hosts: known_hosts(access),
        accept_new_host_keys: access.insecure_accept_new_host_keys,
        parallelism: access.parallel.max(1),
        dry_run: access.dry_run,
        force,
        sealer_binary: std::env::current_exe().context("cannot find this program's path")?,
        report,
    };
    super::runtime()?.block_on(work(&options))
}

fn finish(outcome: &Outcome, cluster: &str, global: &GlobalArgs) -> ExitCode {
    if let Outcome::Done(operation) = outcome
        && !global.quiet
    {
        eprintln!("{} of cluster {cluster}: done", operation.describe());
    }
    ExitCode::SUCCESS
}

/// `apply -f Clusterfile`
pub fn apply(global: &GlobalArgs, args: &ApplyArgs) -> Result<ExitCode> {
    let (clusterfile, text) = apply::read_clusterfile(&args.clusterfile)?;
    let name = clusterfile.cluster.name.clone();
    let outcome = with_options(global, &args.access, args.force, async |options| {
        Ok(apply::apply(clusterfile, text, options).await?)
    })?;
    Ok(finish(&outcome, &name, global))
}

/// `run IMAGE -m ... -n ...` or `run -f Clusterfile`
pub fn run(global: &GlobalArgs, args: &RunArgs) -> Result<ExitCode> {
    let (clusterfile, text) = match (&args.clusterfile, &args.image) {
        (Some(path), _) => apply::read_clusterfile(path)?,
        (None, Some(image)) => {
            let masters = ip_list(args.hosts.masters.as_deref())?;
            if masters.is_empty() {
                bail!("give the masters with -m (or a Clusterfile with -f)");
            }
            let login = &args.login;
            let text =
                deploy::clusterfile::edit::from_flags(&deploy::clusterfile::edit::ClusterFlags {
                    name: args.name.clone(),
                    image: image.clone(),
                    masters,
                    nodes: ip_list(args.hosts.nodes.as_deref())?,
                    env: args.env.clone(),
                    user: login.user.clone(),
                    password: login.password.clone(),
                    port: login.port,
                    key: login.key.clone(),
                    key_passphrase: login.key_passphrase.clone(),
                });
            let clusterfile = deploy::clusterfile::Clusterfile::parse(
                &text,
                std::path::Path::new("command line"),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            (clusterfile, text)
        }
        (None, None) => bail!("give an image (sealer run IMAGE -m IPS) or a Clusterfile (-f)"),
    };
    let name = clusterfile.cluster.name.clone();
    let outcome = with_options(global, &args.access, false, async |options| {
        Ok(apply::apply(clusterfile, text, options).await?)
    })?;
    Ok(finish(&outcome, &name, global))
}

/// `scale-up -m ... -n ...`
pub fn scale_up(global: &GlobalArgs, args: &ScaleUpArgs) -> Result<ExitCode> {
    let masters = ip_list(args.hosts.masters.as_deref())?;
    let nodes = ip_list(args.hosts.nodes.as_deref())?;
    if masters.is_empty() && nodes.is_empty() {
        bail!("give the hosts to add with -m and/or -n");
    }
    let name = cluster_name(args.cluster.as_deref())?;
    let recorded = recorded_clusterfile(&name)?;
    let text = deploy::clusterfile::edit::with_hosts_added(&recorded, &masters, &nodes)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let clusterfile = deploy::clusterfile::Clusterfile::parse(
        &text,
        std::path::Path::new("recorded Clusterfile"),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let outcome = with_options(global, &args.access, false, async |options| {
        Ok(apply::apply(clusterfile, text, options).await?)
    })?;
    Ok(finish(&outcome, &name, global))
}

/// `delete -a | -m ... | -n ...`
pub fn delete(global: &GlobalArgs, args: &DeleteArgs) -> Result<ExitCode> {
    let mut hosts = ip_list(args.hosts.masters.as_deref())?;
    hosts.extend(ip_list(args.hosts.nodes.as_deref())?);
    if !args.all && hosts.is_empty() {
        bail!("say what to delete: -a for the whole cluster, -m/-n for hosts");
    }
    let clusterfile = args
        .clusterfile
        .as_deref()
        .map(apply::read_clusterfile)
        .transpose()?;
    let name = match (&args.cluster, &clusterfile) {
        (Some(name), _) => name.clone(),
        (None, Some((clusterfile, _))) => clusterfile.cluster.name.clone(),
        (None, None) => cluster_name(None)?,
    };
    if args.all && !args.force && !args.access.dry_run {
        confirm(&format!("delete cluster {name} from all its hosts?"))?;
    }
    let outcome = with_options(global, &args.access, true, async |options| {
        Ok(apply::delete(&name, clusterfile, &hosts, args.prune, options).await?)
    })?;
    Ok(finish(&outcome, &name, global))
}

/// `exec CMD`
pub fn exec(global: &GlobalArgs, args: &ExecArgs) -> Result<ExitCode> {
    let name = cluster_name(args.cluster.as_deref())?;
    let roles: Vec<String> = args
        .roles
        .as_deref()
        .map(|roles| roles.split(',').map(|r| r.trim().to_owned()).collect())
        .unwrap_or_default();
    let command = args.command.join(" ");
    let results = with_options(global, &args.access, false, async |options| {
        Ok(apply::exec(&name, &roles, &command, options).await?)
    })?;
    let mut failed = false;
    let mut stdout = std::io::stdout().lock();
    for (host, result) in results {
        match result {
            Ok(output) => {
                for line in output.stdout_text().lines() {
                    writeln!(stdout, "{host}: {line}")?;
                }
                for line in output.stderr_text().lines() {
                    eprintln!("{host}: {line}");
                }
                if !output.success() {
                    failed = true;
                    eprintln!("{host}: exited with {}", output.status);
                }
            }
            Err(error) => {
                failed = true;
                eprintln!("{host}: {error}");
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Parses comma lists and `a-b` ranges of addresses; none for `None`.
fn ip_list(text: Option<&str>) -> Result<Vec<IpAddr>> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => {
            deploy::clusterfile::edit::parse_ip_list(text).map_err(|e| anyhow::anyhow!("{e}"))
        }
    }
}

/// The cluster named, or the only one recorded on this machine.
fn cluster_name(named: Option<&str>) -> Result<String> {
    if let Some(name) = named {
        return Ok(name.to_owned());
    }
    let dir = home()?.join("clusters");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().join("state.json").exists())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    match names.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!(
            "no cluster is recorded on this machine ({}); name it with --cluster or pass -f Clusterfile",
            dir.display()
        ),
        many => bail!(
            "several clusters are recorded ({}): name one with --cluster",
            many.join(", ")
        ),
    }
}

/// The Clusterfile the last operation of cluster `name` applied.
fn recorded_clusterfile(name: &str) -> Result<String> {
    let state = deploy::state::StateFile::new(&home()?, name).load()?;
    state
        .pending
        .map(|pending| pending.target.clusterfile)
        .or(state.applied.map(|applied| applied.clusterfile))
        .with_context(|| format!("cluster {name} is not installed from this machine"))
}

/// Asks a yes/no question on the terminal; refuses without one.
fn confirm(question: &str) -> Result<()> {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() {
        bail!("{question} Pass --force to confirm without a terminal");
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!("nothing was changed")
    }
}
