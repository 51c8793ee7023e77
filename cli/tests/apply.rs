//! `sealer apply`, `delete`, `scale-up`, `run --dry-run` as a user runs them, against test
//! hosts that are real `sshd`s in network namespaces (testkit::netns), installing the
//! kubernetes example, whose stand-ins for kubeadm, kubectl and the scripts record what ran
//! where (`/tmp/sealer-example/calls` on each host) and whose `init-registry.sh` starts
//! Debian's `docker-registry` on the registry host.

mod examples;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use assert_cmd::Command;
use base64::Engine as _;
use tempfile::TempDir;
use testkit::images::{ImageSpec, push_generated, seed_of};
use testkit::netns::{TestHost, TestHosts};
use testkit::registry::Registry;

use examples::{KUBE_IMAGES, example, mirror_path};

/// The example image's name in the test store.
const IMAGE: &str = "sealer-examples/kubernetes:v1.32.0";
/// The same example without `init-registry.sh`: apply starts the built-in registry.
const IMAGE_WITHOUT_REGISTRY_SCRIPT: &str = "sealer-examples/kubernetes:builtin-registry";
/// The example built for amd64 and arm64 (an index).
const IMAGE_TWO_PLATFORMS: &str = "sealer-examples/kubernetes:two-platforms";
/// The same example with one more file (`etc/release`): a new version to upgrade to.
const IMAGE_NEXT: &str = "sealer-examples/kubernetes:next";

/// The image store both example images were built into, once per test binary.
struct Built {
    root: TempDir,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let upstream = Registry::start();
        for reference in KUBE_IMAGES {
            push_generated(
                upstream.addr(),
                mirror_path(reference),
                &[
                    ImageSpec::amd64(&[30_000], seed_of(reference)),
                    ImageSpec {
                        architecture: "arm64".to_owned(),
                        layer_sizes: vec![20_000],
                        seed: seed_of(reference) + 1,
                    },
                ],
            );
        }
        let root = TempDir::new().unwrap();
        let without_script = TempDir::new().unwrap();
        copy_tree(&example("kubernetes"), without_script.path());
        fs::remove_file(
            without_script
                .path()
                .join("rootfs/scripts/init-registry.sh"),
        )
        .unwrap();
        fs::remove_file(
            without_script
                .path()
                .join("rootfs/scripts/clean-registry.sh"),
        )
        .unwrap();
        let next = TempDir::new().unwrap();
        copy_tree(&example("kubernetes"), next.path());
        fs::write(next.path().join("rootfs/etc/release"), "next\n").unwrap();
        let amd64 = "linux/amd64";
        for (tag, context, platforms) in [
            (IMAGE, example("kubernetes"), amd64),
            (
                IMAGE_WITHOUT_REGISTRY_SCRIPT,
                without_script.path().to_path_buf(),
                amd64,
            ),
            (IMAGE_NEXT, next.path().to_path_buf(), amd64),
            (
                IMAGE_TWO_PLATFORMS,
                example("kubernetes"),
                "linux/amd64,linux/arm64",
            ),
        ] {
            let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("sealer-build"))
                .arg("--root")
                .arg(root.path())
                .args([
                    "--registry-mirror",
                    &format!("registry.k8s.io={}", upstream.addr()),
                ])
                .args(["build", "--platform", platforms, "-t", tag])
                .arg(context)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "build {tag}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Built { root }
    })
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A user of `sealer`: its own state directory, the test store, the test hosts' keys.
struct User {
    home: TempDir,
}

impl User {
    fn new() -> Self {
        User {
            home: TempDir::new().unwrap(),
        }
    }

    /// `sealer SUBCOMMAND --known-hosts HOSTS' ARGS...`.
    fn sealer(&self, hosts: &TestHosts, args: &[&str]) -> Output {
        Command::cargo_bin("sealer")
            .unwrap()
            .env("SEALER_HOME", self.home.path())
            .env("SEALER_ROOT", built().root.path())
            .args(&args[..1])
            .arg("--known-hosts")
            .arg(hosts.known_hosts_path())
            .args(&args[1..])
            .timeout(std::time::Duration::from_secs(300))
            .output()
            .unwrap()
    }

    fn write_clusterfile(&self, text: &str) -> PathBuf {
        let path = self.home.path().join("Clusterfile");
        fs::write(&path, text).unwrap();
        path
    }

    fn apply(&self, hosts: &TestHosts, clusterfile: &str, extra: &[&str]) -> Output {
        let path = self.write_clusterfile(clusterfile);
        let mut args = vec!["apply", "-f", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.sealer(hosts, &args)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

#[track_caller]
fn failed(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure; stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

/// A Clusterfile for `masters` and `workers` of `hosts` (indexes), with extra documents.
fn clusterfile(
    hosts: &TestHosts,
    image: &str,
    masters: &[usize],
    workers: &[usize],
    extra: &str,
) -> String {
    let ips = |indexes: &[usize]| {
        indexes
            .iter()
            .map(|&i| hosts.hosts()[i].ip.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut groups = format!("  - ips: [{}]\n    roles: [master]\n", ips(masters));
    if !workers.is_empty() {
        let _ = writeln!(
            groups,
            "  - ips: [{}]\n    roles: [node]\n    labels:\n      tier: worker\n    taints: [\"dedicated=infra:NoSchedule\"]",
            ips(workers)
        );
    }
    format!(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: test\nspec:\n  image: {image}\n  env:\n  - UseIPasNodeName=true\n  ssh:\n    user: root\n    pk: {}\n  hosts:\n{groups}{extra}",
        hosts.user_key_path().display()
    )
}

/// One recorded call on a host.
#[derive(Debug, Clone)]
struct Call {
    what: String,
    host_ip: String,
    registry: String,
    args: String,
}

/// The calls the example's stand-ins recorded on `host`, in order.
fn calls(host: &TestHost) -> Vec<Call> {
    let text = fs::read_to_string(host.path("/tmp/sealer-example/calls")).unwrap_or_default();
    text.lines()
        .map(|line| {
            let (head, args) = line.split_once(" args: ").unwrap_or((line, ""));
            let fields: Vec<&str> = head.split(' ').collect();
            Call {
                what: fields[1].to_owned(),
                host_ip: fields[2].trim_start_matches("host=").to_owned(),
                registry: fields[3].trim_start_matches("registry=").to_owned(),
                args: args.to_owned(),
            }
        })
        .collect()
}

/// What ran on a host, as `what args` lines without the times.
fn call_lines(host: &TestHost) -> Vec<String> {
    calls(host)
        .into_iter()
        .map(|call| format!("{} {}", call.what, call.args).trim().to_owned())
        .collect()
}

/// Paths under these are logs and scratch space, not what apply leaves on a host.
const UNTRACKED: [&str; 5] = ["/tmp", "/run", "/var/log", "/var/tmp", "/var/cache"];

/// The paths a host's overlays hold, i.e. every path the host changed since it started,
/// as the host sees them (`/etc/hosts`), scratch space left out.
fn changed_paths(host: &TestHost) -> Vec<String> {
    let upper = host.root_dir().join("upper");
    let mut found = Vec::new();
    let mut pending = vec![upper.clone()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let shown = format!("/{}", path.strip_prefix(&upper).unwrap().display());
            if UNTRACKED
                .iter()
                .any(|skip| shown == *skip || shown.starts_with(&format!("{skip}/")))
            {
                continue;
            }
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pending.push(path);
            }
            found.push(shown);
        }
    }
    found
}

/// What `path` is: kind, mode, owner and content digest; `absent` when it does not exist.
fn path_state(path: &Path) -> String {
    use sha2::Digest as _;
    match fs::symlink_metadata(path) {
        Err(_) => "absent".to_owned(),
        Ok(metadata) if metadata.is_file() => format!(
            "file {:o} {}:{} {}",
            metadata.mode(),
            metadata.uid(),
            metadata.gid(),
            hex::encode(sha2::Sha256::digest(fs::read(path).unwrap_or_default()))
        ),
        Ok(metadata) if metadata.is_dir() => format!("dir {:o}", metadata.mode()),
        Ok(metadata) => format!("other {:o} {:?}", metadata.mode(), fs::read_link(path).ok()),
    }
}

/// A host's state before a test changes it: what its overlays already hold. Every other path
/// is as the machine's own file system has it.
struct HostSnapshot {
    changed: BTreeMap<String, String>,
}

impl HostSnapshot {
    fn take(host: &TestHost) -> Self {
        HostSnapshot {
            changed: changed_paths(host)
                .into_iter()
                .map(|path| {
                    let state = path_state(&host.path(&path));
                    (path, state)
                })
                .collect(),
        }
    }

    /// Fails naming every path that differs now.
    #[track_caller]
    fn assert_unchanged(&self, host: &TestHost) {
        let mut paths: Vec<String> = changed_paths(host);
        paths.extend(self.changed.keys().cloned());
        paths.sort();
        paths.dedup();
        let differences: Vec<String> = paths
            .into_iter()
            .filter_map(|path| {
                let before = self
                    .changed
                    .get(&path)
                    .cloned()
                    .unwrap_or_else(|| path_state(Path::new(&path)));
                let now = path_state(&host.path(&path));
                (before != now).then(|| format!("{path}: {before} -> {now}"))
            })
            .collect();
        assert!(
            differences.is_empty(),
            "{} is not as before:\n{}",
            host.ip,
            differences.join("\n")
        );
    }
}

/// How skopeo trusts the registry.
#[derive(Clone, Copy)]
enum Trust<'a> {
    /// TLS, verified against the CA certificates (`*.crt`) in this directory.
    CaDir(&'a Path),
    /// Plain HTTP (or TLS unverified).
    Insecure,
}

/// Where the hosts of a containerd cluster trust the registry `sea.hub:5000`.
const CONTAINERD_REGISTRY_CERTS: &str = "/etc/containerd/certs.d/sea.hub:5000";

/// The registry credentials tests give in Clusterfiles (`user:password`).
const REGISTRY_CREDENTIALS: &str = "puller:registry-s3cret";

/// `spec.registry` with [`REGISTRY_CREDENTIALS`], to put in a Clusterfile's `extra`.
const REGISTRY_WITH_CREDENTIALS: &str =
    "  registry:\n    localRegistry:\n      username: puller\n      password: registry-s3cret\n";

/// `skopeo inspect` of `repository:tag` (or `@digest`) on the registry at `ip:5000`, with
/// `creds` (`user:password`) when given.
fn skopeo_digest(
    ip: &str,
    reference: &str,
    trust: Trust<'_>,
    creds: Option<&str>,
) -> Result<String, String> {
    let mut command = std::process::Command::new("skopeo");
    command.args(["inspect", "--raw"]);
    match trust {
        Trust::CaDir(dir) => command.arg("--cert-dir").arg(dir),
        Trust::Insecure => command.arg("--tls-verify=false"),
    };
    if let Some(creds) = creds {
        command.arg("--creds").arg(creds);
    }
    let output = command
        .arg(format!("docker://{ip}:5000/{reference}"))
        .output()
        .unwrap();
    if output.status.success() {
        Ok(testkit_sha256(&output.stdout))
    } else {
        Err(text(&output.stderr))
    }
}

fn testkit_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Every cached image answers by tag and by digest at the registry of `ip`, under the
/// image's repository without its registry domain (as the original stores them).
#[track_caller]
fn assert_registry_serves_every_image(ip: &str, trust: Trust<'_>, creds: Option<&str>) {
    for reference in KUBE_IMAGES {
        let repository_and_tag = mirror_path(reference);
        let digest = skopeo_digest(ip, repository_and_tag, trust, creds)
            .unwrap_or_else(|e| panic!("{repository_and_tag} at {ip}: {e}"));
        let repository = repository_and_tag.rsplit_once(':').unwrap().0;
        skopeo_digest(ip, &format!("{repository}@{digest}"), trust, creds)
            .unwrap_or_else(|e| panic!("{repository}@{digest} at {ip}: {e}"));
    }
}

#[test]
fn install_reapply_scale_up_scale_down_and_delete() {
    let hosts = TestHosts::start(4).unwrap();
    let user = User::new();
    let before: Vec<HostSnapshot> = hosts.hosts().iter().map(HostSnapshot::take).collect();
    let [master, worker1, worker2, fourth] = [0, 1, 2, 3].map(|i| &hosts.hosts()[i]);

    // Install on one master and two workers.
    // A plugin in the older format the original's docs still show, for one worker by IP.
    let legacy_plugin = format!(
        "---\napiVersion: sealer.aliyun.com/v1alpha1\nkind: Plugin\nmetadata:\n  name: legacy-mark\nspec:\n  type: SHELL\n  action: PostInstall\n  'on': {}\n  data: bin/example-record legacy-post-install\n",
        hosts.hosts()[1].ip
    );
    // The registry requires credentials.
    let extra = format!("{REGISTRY_WITH_CREDENTIALS}{legacy_plugin}");
    let three = clusterfile(&hosts, IMAGE, &[0], &[1, 2], &extra);
    let out = succeeded(&user.apply(&hosts, &three, &[]));
    assert!(out.contains("install of cluster test: done"), "{out}");
    let log = fs::read_to_string(user.home.path().join("log/sealer.log")).unwrap();
    for host in [master, worker1, worker2] {
        assert!(
            log.lines()
                .any(|line| line.contains(&format!("root@{}:22", host.ip))
                    && line.contains("duration_ms")
                    && line.contains("ran")),
            "every command is logged with its host and duration:\n{log}"
        );
    }
    assert!(
        !log.contains("abcdef.0123456789abcdef"),
        "the join token is not logged"
    );

    let on_master = call_lines(master);
    let position = |lines: &[String], prefix: &str| {
        lines
            .iter()
            .position(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {lines:#?}"))
    };
    let order = [
        "containerd.sh",
        "init-registry.sh 5000",
        "init-kube.sh",
        "kubeadm init --config=/etc/kubernetes/kubeadm.yaml --upload-certs",
        "kubectl label node",
    ];
    let positions: Vec<usize> = order.iter().map(|p| position(&on_master, p)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "order on master0: {on_master:#?}"
    );
    assert!(
        on_master.iter().any(|l| l.starts_with("kubectl get nodes")),
        "launch CMDS ran: {on_master:#?}"
    );
    assert!(
        on_master.iter().any(|l| l.starts_with(
            "kubectl -n kube-system create configmap sealer-clusterfile --from-file=Clusterfile="
        )),
        "the Clusterfile is saved in the cluster: {on_master:#?}"
    );
    let legacy_ran: Vec<String> = hosts
        .hosts()
        .iter()
        .filter(|host| {
            call_lines(host)
                .iter()
                .any(|l| l.starts_with("legacy-post-install"))
        })
        .map(|host| host.ip.to_string())
        .collect();
    assert_eq!(
        legacy_ran,
        vec![worker1.ip.to_string()],
        "the old-format plugin's `on`"
    );
    for call in calls(master).iter().filter(|c| c.what.contains(".sh")) {
        assert_eq!(
            call.host_ip,
            master.ip.to_string(),
            "HostIP of {}",
            call.what
        );
        assert_eq!(
            call.registry, "sea.hub:5000",
            "RegistryURL of {}",
            call.what
        );
    }
    for worker in [worker1, worker2] {
        let lines = call_lines(worker);
        let join = position(
            &lines,
            "kubeadm join apiserver.cluster.local:6443 --token abcdef.0123456789abcdef",
        );
        assert!(position(&lines, "containerd.sh") < position(&lines, "init-kube.sh"));
        assert!(position(&lines, "init-kube.sh") < join);
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("init-registry.sh") || l.starts_with("kubeadm init")),
            "{lines:#?}"
        );
        assert!(!lines[join].contains("--control-plane"));
        let hosts_file = fs::read_to_string(worker.path("/etc/hosts")).unwrap();
        assert!(
            hosts_file.contains(&format!("{} sea.hub", master.ip)),
            "{hosts_file}"
        );
        assert!(
            hosts_file.contains(&format!("{} apiserver.cluster.local", master.ip)),
            "{hosts_file}"
        );
        assert!(
            worker
                .path("/var/lib/sealer/data/test/rootfs/bin/kubeadm")
                .exists()
        );
        assert!(
            !worker
                .path("/var/lib/sealer/data/test/rootfs/registry")
                .exists(),
            "registry data only on registry hosts"
        );
        // The registry serves TLS (the default): the workers trust its CA for it and for
        // the domains it mirrors; only registry hosts hold its key.
        let mirror =
            fs::read_to_string(worker.path("/etc/containerd/certs.d/registry.k8s.io/hosts.toml"))
                .unwrap();
        assert!(
            mirror.contains("[host.\"https://sea.hub:5000\"]")
                && mirror.contains(&format!("ca = \"{CONTAINERD_REGISTRY_CERTS}/ca.crt\"")),
            "{mirror}"
        );
        assert_eq!(
            fs::read(worker.path(&format!("{CONTAINERD_REGISTRY_CERTS}/ca.crt"))).unwrap(),
            fs::read(user.home.path().join("clusters/test/registry-pki/ca.crt")).unwrap()
        );
        assert!(
            !worker
                .path("/var/lib/sealer/data/test/rootfs/certs/sea.hub.key")
                .exists()
        );
    }
    let key = master.path("/var/lib/sealer/data/test/rootfs/certs/sea.hub.key");
    assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    // Labels and taints of the workers, through kubectl on master0, node named by IP.
    assert!(
        on_master.iter().any(|l| l.starts_with(&format!(
            "kubectl taint node {} dedicated=infra:NoSchedule",
            worker1.ip
        ))),
        "{on_master:#?}"
    );
    assert!(
        on_master.iter().any(|l| l.contains(&format!(
            "label node {} node-role.kubernetes.io/node= tier=worker",
            worker2.ip
        ))),
        "{on_master:#?}"
    );
    // Only with the Clusterfile's credentials, which every host's kubelet has (privately)
    // and no log shows.
    let trusted = master.path(CONTAINERD_REGISTRY_CERTS);
    let ip = master.ip.to_string();
    assert_registry_serves_every_image(&ip, Trust::CaDir(&trusted), Some(REGISTRY_CREDENTIALS));
    let refused = skopeo_digest(
        &ip,
        mirror_path(KUBE_IMAGES[0]),
        Trust::CaDir(&trusted),
        None,
    )
    .expect_err("a client without credentials is refused");
    assert!(
        refused.contains("unauthorized") || refused.contains("authentication required"),
        "{refused}"
    );
    let token = base64::engine::general_purpose::STANDARD.encode(REGISTRY_CREDENTIALS);
    for host in [master, worker1, worker2] {
        let mirror = host.path("/etc/containerd/certs.d/registry.k8s.io/hosts.toml");
        assert!(
            fs::read_to_string(&mirror)
                .unwrap()
                .contains(&format!("Authorization = [\"Basic {token}\"]")),
            "containerd sends the credentials to the mirror"
        );
        assert_eq!(fs::metadata(&mirror).unwrap().mode() & 0o777, 0o600);
        let config = host.path("/var/lib/kubelet/config.json");
        assert_eq!(
            fs::read_to_string(&config).unwrap(),
            format!("{{\"auths\":{{\"sea.hub:5000\":{{\"auth\":\"{token}\"}}}}}}\n")
        );
        assert_eq!(fs::metadata(&config).unwrap().mode() & 0o777, 0o600);
    }
    let log = fs::read_to_string(user.home.path().join("log/sealer.log")).unwrap();
    assert!(
        !log.contains("registry-s3cret") && !log.contains(&token),
        "the registry password is not logged"
    );

    // The same Clusterfile again changes nothing.
    let counts: Vec<usize> = hosts.hosts().iter().map(|h| calls(h).len()).collect();
    let out = succeeded(&user.apply(&hosts, &three, &[]));
    assert!(
        out.contains("up to date: nothing to do") && !out.contains("note:"),
        "{out}"
    );
    // Other settings changed are not applied to the installed hosts, and apply says so.
    let out = succeeded(&user.apply(&hosts, &three.replace("tier: worker", "tier: batch"), &[]));
    assert!(
        out.contains("up to date: nothing to do")
            && out.contains("apply changes only its hosts and image"),
        "{out}"
    );
    assert_eq!(
        counts,
        hosts
            .hosts()
            .iter()
            .map(|h| calls(h).len())
            .collect::<Vec<_>>()
    );

    // A fourth host joins; the others only see master0 make a token and label the node.
    // Not while the registry's settings change: the new host would not match the registry.
    let out = failed(&user.apply(
        &hosts,
        &clusterfile(&hosts, IMAGE, &[0], &[1, 2, 3], &legacy_plugin),
        &[],
    ));
    assert!(out.contains("changes spec.registry"), "{out}");
    let four = clusterfile(&hosts, IMAGE, &[0], &[1, 2, 3], &extra);
    succeeded(&user.apply(&hosts, &four, &[]));
    assert_eq!(calls(worker1).len(), counts[1], "worker 1 untouched");
    assert_eq!(calls(worker2).len(), counts[2], "worker 2 untouched");
    let lines = call_lines(fourth);
    position(&lines, "kubeadm join apiserver.cluster.local:6443");
    let new_on_master: Vec<String> = call_lines(master)[counts[0]..].to_vec();
    assert!(
        new_on_master.iter().all(|l| l.starts_with("kubeadm token")
            || l.starts_with("kubeadm init phase upload-certs")
            || l.starts_with("kubectl")),
        "{new_on_master:#?}"
    );

    // Removing it cleans only it.
    let out = failed(&user.apply(&hosts, &three, &[]));
    assert!(out.contains("--force"), "removal needs confirmation: {out}");
    succeeded(&user.apply(&hosts, &three, &["--force"]));
    assert!(
        call_lines(master)
            .iter()
            .any(|l| l.starts_with(&format!("kubectl delete node {}", fourth.ip)))
    );
    assert_eq!(calls(worker1).len(), counts[1]);
    before[3].assert_unchanged(fourth);

    // Delete everything: every host as it was.
    succeeded(&user.sealer(&hosts, &["delete", "-a", "--prune", "--force"]));
    for (host, before) in hosts.hosts().iter().zip(&before) {
        before.assert_unchanged(host);
    }
    assert!(
        !user.home.path().join("clusters/test").exists(),
        "the state is forgotten"
    );
}

#[test]
fn dry_run_prints_the_plan_and_touches_no_host() {
    let hosts = TestHosts::start(2).unwrap();
    let user = User::new();
    let connections = hosts.hosts()[0].accepted_connections();
    let out = succeeded(&user.apply(
        &hosts,
        &clusterfile(&hosts, IMAGE, &[0], &[1], ""),
        &["--dry-run"],
    ));
    for expected in [
        "plan: install cluster test",
        "distribute",
        "container-runtime",
        "kubeadm init",
        "kubeadm join",
        "bash init-registry.sh 5000",
    ] {
        assert!(
            out.contains(expected),
            "no {expected:?} in the plan:\n{out}"
        );
    }
    assert_eq!(
        hosts.hosts()[0].accepted_connections(),
        connections,
        "no SSH connection"
    );
    assert!(calls(&hosts.hosts()[0]).is_empty());
    assert!(!user.home.path().join("clusters/test/state.json").exists());
}

#[test]
fn a_host_without_sshd_fails_before_anything_changes() {
    let hosts = TestHosts::start(2).unwrap();
    let user = User::new();
    hosts.hosts()[1].stop_sshd();
    let out = failed(&user.apply(&hosts, &clusterfile(&hosts, IMAGE, &[0], &[1], ""), &[]));
    assert!(
        out.contains(&hosts.hosts()[1].ip.to_string()),
        "names the host: {out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
    assert!(calls(&hosts.hosts()[0]).is_empty());
    assert!(!hosts.hosts()[0].path("/var/lib/sealer").exists());
}

#[test]
fn a_failing_script_stops_the_run_and_the_next_run_resumes_after_the_fix() {
    let hosts = TestHosts::start(3).unwrap();
    let user = User::new();
    let plugin = "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata:\n  name: check-disk\nspec:\n  type: SHELL\n  action: pre-init-host\n  scope: node\n  data: |\n    if [ -f /tmp/broken ]; then echo \"disk check failed on $HostIP\" >&2; exit 3; fi\n";
    let file = clusterfile(&hosts, IMAGE, &[0], &[1, 2], plugin);
    hosts.hosts()[2].exec("touch /tmp/broken");
    let out = failed(&user.apply(&hosts, &file, &[]));
    let broken = hosts.hosts()[2].ip.to_string();
    assert!(out.contains(&broken), "names the host: {out}");
    assert!(out.contains("check-disk"), "names the step: {out}");
    assert!(
        out.contains(&format!("disk check failed on {broken}")),
        "quotes the output: {out}"
    );
    assert!(
        out.contains("run the same command again to resume"),
        "{out}"
    );
    assert!(
        calls(&hosts.hosts()[0]).iter().all(|c| c.what != "kubeadm"),
        "stopped before kubeadm"
    );

    hosts.hosts()[2].exec("rm /tmp/broken");
    let out = succeeded(&user.apply(&hosts, &file, &[]));
    assert!(
        out.contains("resuming the install of cluster test"),
        "{out}"
    );
    assert!(out.contains("install of cluster test: done"), "{out}");
    // The distribution finished in the first run: not redone.
    assert!(!out.contains("distribute the rootfs"), "{out}");
    let on_broken = call_lines(&hosts.hosts()[2]);
    assert!(
        on_broken.iter().any(|l| l.starts_with("kubeadm join")),
        "{on_broken:#?}"
    );
}

#[test]
fn a_cut_network_mid_distribution_fails_cleanly_and_the_next_run_completes() {
    let hosts = TestHosts::start(2).unwrap();
    let user = User::new();
    let file = clusterfile(&hosts, IMAGE, &[0], &[1], "");
    let worker = &hosts.hosts()[1];
    // Slow the worker's link so the transfer is under way when the network goes.
    // Slow down what reaches the worker so the transfer is under way when the network goes.
    worker.limit_incoming_rate("64kbit");
    let incoming = worker.path("/var/lib/sealer/data/test/.rootfs.incoming");
    std::thread::scope(|scope| {
        let run = scope.spawn(|| user.apply(&hosts, &file, &[]));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !incoming.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        worker.cut_network();
        let out = failed(&run.join().unwrap());
        assert!(
            out.contains(&worker.ip.to_string()),
            "names the host: {out}"
        );
    });
    assert!(
        !worker.path("/var/lib/sealer/data/test/rootfs").exists(),
        "no half-written rootfs in place"
    );
    worker.restore_network();
    worker.clear_incoming_rate();
    succeeded(&user.apply(&hosts, &file, &[]));
    assert!(
        worker
            .path("/var/lib/sealer/data/test/rootfs/bin/kubeadm")
            .exists()
    );
    assert!(!incoming.exists());
    assert!(
        call_lines(worker)
            .iter()
            .any(|l| l.starts_with("kubeadm join"))
    );
}

#[test]
fn without_init_registry_sh_the_built_in_registry_serves_the_images() {
    let hosts = TestHosts::start(1).unwrap();
    let user = User::new();
    let master = &hosts.hosts()[0];
    succeeded(&user.apply(
        &hosts,
        &clusterfile(
            &hosts,
            IMAGE_WITHOUT_REGISTRY_SCRIPT,
            &[0],
            &[],
            REGISTRY_WITH_CREDENTIALS,
        ),
        &[],
    ));
    assert!(master.path("/var/lib/sealer/data/test/bin/sealer").exists());
    let ip = master.ip.to_string();
    let trusted = master.path(CONTAINERD_REGISTRY_CERTS);
    assert_registry_serves_every_image(&ip, Trust::CaDir(&trusted), Some(REGISTRY_CREDENTIALS));
    assert!(
        skopeo_digest(
            &ip,
            mirror_path(KUBE_IMAGES[0]),
            Trust::CaDir(&trusted),
            None
        )
        .is_err(),
        "it requires the credentials"
    );
    // It serves TLS that only the cluster's CA vouches for.
    let no_ca = TempDir::new().unwrap();
    let refused = skopeo_digest(
        &ip,
        mirror_path(KUBE_IMAGES[0]),
        Trust::CaDir(no_ca.path()),
        Some(REGISTRY_CREDENTIALS),
    )
    .expect_err("a client without the CA refuses the registry");
    assert!(refused.contains("certificate"), "{refused}");
    succeeded(&user.sealer(&hosts, &["delete", "-a", "--prune", "--force"]));
    let stopped = skopeo_digest(
        &ip,
        mirror_path(KUBE_IMAGES[0]),
        Trust::Insecure,
        Some(REGISTRY_CREDENTIALS),
    )
    .expect_err("the registry is stopped");
    assert!(stopped.contains("connection refused"), "{stopped}");
}

#[test]
fn invalid_clusterfiles_are_refused_with_the_place_of_each_problem() {
    let hosts = TestHosts::start(1).unwrap();
    let user = User::new();
    let ip = hosts.hosts()[0].ip;
    let text = format!(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: test\nspec:\n  image: {IMAGE}\n  hosts:\n  - ips: [{ip}, {ip}]\n    roles: [node]\n    taints: [\"bad taint\"]\n"
    );
    let out = failed(&user.apply(&hosts, &text, &[]));
    assert!(out.contains("Clusterfile:8:"), "line and column: {out}");
    assert!(out.contains("twice") || out.contains("duplicate"), "{out}");
    assert!(out.contains("master"), "no master: {out}");
    assert!(out.contains("taint"), "{out}");
    assert_eq!(hosts.hosts()[0].accepted_connections(), 0);
}

#[test]
fn a_new_image_upgrades_and_hosts_join_and_leave_by_command() {
    let hosts = TestHosts::start(3).unwrap();
    let user = User::new();
    let [master, worker, extra] = [0, 1, 2].map(|i| &hosts.hosts()[i]);
    let extra_before = HostSnapshot::take(extra);
    let plugin = "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata:\n  name: mark-upgrade\nspec:\n  type: SHELL\n  action: upgrade-host | upgrade\n  data: echo \"upgraded $HostIP\" >>/tmp/sealer-example/upgrades\n---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata:\n  name: mark-clean\nspec:\n  type: SHELL\n  action: pre-clean-host\n  data: bin/example-record pre-clean-host\n";
    succeeded(&user.apply(&hosts, &clusterfile(&hosts, IMAGE, &[0], &[1], plugin), &[]));
    assert!(
        !worker
            .path("/var/lib/sealer/data/test/rootfs/etc/release")
            .exists()
    );

    let out = succeeded(&user.apply(
        &hosts,
        &clusterfile(&hosts, IMAGE_NEXT, &[0], &[1], plugin),
        &[],
    ));
    assert!(out.contains("upgrade of cluster test: done"), "{out}");
    assert_eq!(
        fs::read_to_string(worker.path("/var/lib/sealer/data/test/rootfs/etc/release")).unwrap(),
        "next\n"
    );
    let marks = |host: &TestHost| {
        fs::read_to_string(host.path("/tmp/sealer-example/upgrades")).unwrap_or_default()
    };
    assert_eq!(
        marks(worker),
        format!("upgraded {}\n", worker.ip),
        "upgrade-host on the worker"
    );
    assert_eq!(
        marks(master).lines().count(),
        2,
        "upgrade-host and upgrade on master0: {}",
        marks(master)
    );
    let joins = call_lines(worker)
        .iter()
        .filter(|line| line.starts_with("kubeadm join"))
        .count();
    assert_eq!(joins, 1, "an upgrade joins nothing again");

    // A master joins: it serves the (highly available) registry too, with a certificate
    // that names it, and stops serving it when it leaves.
    let ip = extra.ip.to_string();
    succeeded(&user.sealer(&hosts, &["scale-up", "-m", &ip]));
    assert!(
        call_lines(extra)
            .iter()
            .any(|l| l.starts_with("kubeadm join") && l.contains("--control-plane")),
        "{:#?}",
        call_lines(extra)
    );
    assert!(
        extra
            .path("/var/lib/sealer/data/test/rootfs/etc/release")
            .exists(),
        "the upgraded rootfs"
    );
    assert_registry_serves_every_image(
        &ip,
        Trust::CaDir(&extra.path(CONTAINERD_REGISTRY_CERTS)),
        None,
    );
    succeeded(&user.sealer(&hosts, &["delete", "-m", &ip, "--force"]));
    let stopped = skopeo_digest(&ip, mirror_path(KUBE_IMAGES[0]), Trust::Insecure, None)
        .expect_err("the leaving master's registry is stopped");
    assert!(stopped.contains("connection refused"), "{stopped}");
    let pre_clean = calls(extra)
        .into_iter()
        .find(|call| call.what == "pre-clean-host")
        .unwrap_or_else(|| {
            panic!(
                "no pre-clean-host hook on the leaving host: {:#?}",
                call_lines(extra)
            )
        });
    assert_eq!(pre_clean.host_ip, ip, "with its HostIP");
    extra_before.assert_unchanged(extra);
    let out = succeeded(&user.apply(
        &hosts,
        &clusterfile(&hosts, IMAGE_NEXT, &[0], &[1], plugin),
        &[],
    ));
    assert!(
        out.contains("up to date"),
        "the recorded Clusterfile lost the host again: {out}"
    );
}

#[test]
fn a_host_of_another_architecture_gets_the_image_s_variant_for_it() {
    let hosts = TestHosts::start(2).unwrap();
    let user = User::new();
    let [master, worker] = [0, 1].map(|i| &hosts.hosts()[i]);
    // The worker says it is an arm64 machine.
    let fake = worker.exec(
        "printf '#!/bin/sh\\nif [ \"$1\" = -m ]; then echo aarch64; else exec /usr/bin/uname \"$@\"; fi\\n' >/usr/local/bin/uname && chmod 0755 /usr/local/bin/uname",
    );
    assert!(fake.status.success(), "{fake:?}");
    let out = succeeded(&user.apply(
        &hosts,
        &clusterfile(&hosts, IMAGE_TWO_PLATFORMS, &[0], &[1], ""),
        &[],
    ));
    assert!(out.contains("install of cluster test: done"), "{out}");
    assert!(
        user.home
            .path()
            .join("clusters/test/work-linux-arm64")
            .is_dir(),
        "the arm64 variant was prepared"
    );
    let key = |host: &TestHost| {
        fs::read_to_string(host.path("/var/lib/sealer/data/test/rootfs.key")).unwrap()
    };
    let (master_key, worker_key) = (key(master), key(worker));
    assert_ne!(
        master_key.trim_end_matches("+registry\n").trim(),
        worker_key.trim(),
        "each got its platform's rootfs"
    );
    assert!(
        call_lines(worker)
            .iter()
            .any(|l| l.starts_with("kubeadm join"))
    );
}

#[test]
fn docker_hosts_get_the_registry_in_daemon_json_and_exec_reaches_every_host() {
    let hosts = TestHosts::start(1).unwrap();
    let user = User::new();
    let host = &hosts.hosts()[0];
    // The host has docker settings of its own: apply adds to them, delete puts them back.
    let own_settings =
        "{\"log-driver\": \"journald\", \"registry-mirrors\": [\"https://mirror.example\"]}\n";
    let written = host.exec(&format!(
        "mkdir -p /etc/docker && printf '%s' '{own_settings}' >/etc/docker/daemon.json"
    ));
    assert!(written.status.success(), "{}", text(&written.stderr));
    let before = HostSnapshot::take(host);
    // A registry the Clusterfile marks insecure serves plain HTTP.
    let file = clusterfile(&hosts, IMAGE, &[0], &[], "").replace(
        "  ssh:\n",
        "  containerRuntime:\n    type: docker\n  registry:\n    localRegistry:\n      insecure: true\n  ssh:\n",
    );
    succeeded(&user.apply(&hosts, &file, &[]));
    let daemon: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(host.path("/etc/docker/daemon.json")).unwrap())
            .unwrap();
    assert_eq!(
        daemon,
        serde_json::json!({
            "log-driver": "journald",
            "registry-mirrors": ["https://mirror.example", "http://sea.hub:5000"],
            "insecure-registries": ["sea.hub:5000"],
        })
    );
    assert!(!host.path("/etc/docker/certs.d").exists());
    assert!(
        !user.home.path().join("clusters/test/registry-pki").exists(),
        "no certificates are made for plain HTTP"
    );
    assert_registry_serves_every_image(&host.ip.to_string(), Trust::Insecure, None);
    assert!(
        !host.path("/etc/containerd/certs.d").exists(),
        "no containerd files for docker"
    );

    let out = user.sealer(
        &hosts,
        &["exec", "-r", "master", "echo", "hello from", "$HostIP"],
    );
    assert_eq!(
        text(&out.stdout),
        format!("{}: hello from\n", host.ip),
        "{}",
        text(&out.stderr)
    );

    succeeded(&user.sealer(&hosts, &["delete", "-a", "--prune", "--force"]));
    before.assert_unchanged(host);
}

#[test]
fn delete_cleans_the_hosts_after_a_failed_install() {
    let hosts = TestHosts::start(2).unwrap();
    let user = User::new();
    let before: Vec<HostSnapshot> = hosts.hosts().iter().map(HostSnapshot::take).collect();
    let plugin = "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata:\n  name: always-fails\nspec:\n  type: SHELL\n  action: post-init-host\n  scope: node\n  data: exit 7\n";
    let out = failed(&user.apply(&hosts, &clusterfile(&hosts, IMAGE, &[0], &[1], plugin), &[]));
    assert!(out.contains("always-fails"), "{out}");
    assert!(
        call_lines(&hosts.hosts()[1])
            .iter()
            .any(|l| l.starts_with("kubeadm join")),
        "it got far"
    );
    succeeded(&user.sealer(&hosts, &["delete", "-a", "--prune", "--force"]));
    for (host, before) in hosts.hosts().iter().zip(&before) {
        before.assert_unchanged(host);
    }
}
