//! Test hosts for the deploy tests: real OpenSSH servers (Debian's `openssh-server`), each in
//! its own network namespace and with its own writable view of the system directories.
//!
//! [`TestHosts::start`] makes one bridge in the root namespace (`10.250.<k>.1/24`, `k` chosen
//! from the process id and checked to be unused) and, per host, a network namespace joined to
//! the bridge by a veth pair (`10.250.<k>.<10+i>/24`, default route via the bridge). Each host
//! has a long-lived *holder* process that owns a private mount namespace in which `/etc`,
//! `/var`, `/root`, `/usr/local/bin`, `/usr/bin`, `/opt`, `/tmp` and `/run` are overlays whose
//! upper directories live under [`TestHost::root_dir`] (on a tmpfs the test mounts, so the
//! overlays never nest inside their own lower directories). `sshd` runs inside the holder's
//! namespaces, so what a command installs lands only in that host's view, and processes a
//! command leaves in the background keep running after its SSH session ends.
//!
//! Dropping [`TestHosts`] kills every process of every host's network namespace, deletes the
//! namespaces, the veth pairs and the bridge, and unmounts the tmpfs. Leftovers of runs whose
//! process died (names carry the owning process id: `slt<pid>-…`, `sltb<pid>n…`,
//! `sltv<pid>n…`) are removed by the next [`TestHosts::start`].
//!
//! ```no_run
//! let hosts = testkit::netns::TestHosts::start(2).unwrap();
//! let out = hosts[0].exec("echo hi > /etc/marker");
//! assert!(out.status.success());
//! assert!(hosts[0].path("/etc/marker").exists());
//! assert!(!hosts[1].path("/etc/marker").exists());
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::ops::Index;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Debian's OpenSSH server binary.
pub const SSHD: &str = "/usr/sbin/sshd";
/// The directories each host sees as its own writable overlay of the real one.
pub const OVERLAID_DIRS: [&str; 8] = [
    "/etc",
    "/var",
    "/root",
    "/usr/local/bin",
    "/usr/bin",
    "/opt",
    "/tmp",
    "/run",
];
/// The SSH port every host's `sshd` listens on.
pub const SSH_PORT: u16 = 22;
/// How long `sshd` may take to listen after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between two readiness checks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// The longest network interface name Linux accepts.
const MAX_IFNAME: usize = 15;

/// Numbers the `TestHosts` of this process (several tests may run in parallel threads).
static NEXT_INSTANCE: AtomicU32 = AtomicU32::new(0);
/// Serializes the choice of the subnet and the bridge's creation within this process.
static SUBNET_LOCK: Mutex<()> = Mutex::new(());

/// A set of test hosts sharing one bridge; index it to reach one host.
pub struct TestHosts {
    hosts: Vec<TestHost>,
    bridge: String,
    bridge_ip: Ipv4Addr,
    dir: PathBuf,
    known_hosts: PathBuf,
    user_key: PathBuf,
}

/// One test host: its network namespace, its filesystem view and its `sshd`.
pub struct TestHost {
    /// The host's address on the test bridge.
    pub ip: Ipv4Addr,
    /// The port its `sshd` listens on ([`SSH_PORT`]).
    pub port: u16,
    /// The network namespace's name (`ip netns exec NAME …`).
    pub netns: String,
    veth: String,
    dir: PathBuf,
    holder: Child,
    sshd: Mutex<Option<Child>>,
}

/// How to start [`TestHosts`]: how many, and optional password authentication for root.
#[derive(Debug, Clone, Default)]
pub struct TestHostsBuilder {
    count: usize,
    root_password: Option<String>,
}

impl TestHostsBuilder {
    /// Sets this password for root on every host and enables `PasswordAuthentication`.
    #[must_use]
    pub fn root_password(mut self, password: &str) -> Self {
        self.root_password = Some(password.to_owned());
        self
    }

    /// Makes the hosts and starts their `sshd`s; see [`TestHosts::start`].
    pub fn start(self) -> io::Result<TestHosts> {
        check_prerequisites()?;
        remove_stale_leftovers();
        let pid = std::process::id();
        let instance = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        let base = format!("slt{pid}-{instance}");
        let dir = std::env::temp_dir().join(&base);
        fs::create_dir_all(&dir)?;
        if let Err(error) = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0755", "tmpfs"])
            .arg(&dir))
        {
            let _ = fs::remove_dir(&dir);
            return Err(error);
        }
        let bridge = format!("sltb{pid}n{instance}");
        check_ifname(&bridge)?;
        let mut hosts = TestHosts {
            hosts: Vec::new(),
            bridge: bridge.clone(),
            bridge_ip: Ipv4Addr::UNSPECIFIED,
            known_hosts: dir.join("known_hosts"),
            user_key: dir.join("id_ed25519"),
            dir,
        };
        // From here on, Drop cleans whatever was made when a step fails.
        let subnet = {
            let _guard = SUBNET_LOCK
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let subnet = free_subnet(pid, instance)?;
            run(Command::new("ip").args(["link", "add", &bridge, "type", "bridge"]))?;
            hosts.bridge_ip = Ipv4Addr::new(10, 250, subnet, 1);
            run(Command::new("ip").args([
                "addr",
                "add",
                &format!("{}/24", hosts.bridge_ip),
                "dev",
                &bridge,
            ]))?;
            subnet
        };
        run(Command::new("ip").args(["link", "set", &bridge, "up"]))?;
        keygen(&hosts.user_key, "testkit-user")?;
        let user_public = fs::read_to_string(hosts.user_key.with_extension("pub"))?;
        let mut known_hosts = String::new();
        for index in 0..self.count {
            let ip = Ipv4Addr::new(
                10,
                250,
                subnet,
                u8::try_from(10 + index).map_err(|_| {
                    io::Error::other(format!("at most 244 test hosts, {} asked", self.count))
                })?,
            );
            let host =
                hosts.make_host(&base, index, ip, &user_public, self.root_password.is_some())?;
            hosts.hosts.push(host);
            let host = &hosts.hosts[index];
            if let Some(password) = &self.root_password {
                host.set_root_password(password)?;
            }
            let host_public = fs::read_to_string(host.upper("/etc/ssh/ssh_host_ed25519_key.pub"))?;
            let mut fields = host_public.split_whitespace();
            let (Some(kind), Some(key)) = (fields.next(), fields.next()) else {
                return Err(io::Error::other(format!(
                    "unreadable host key of {ip}: {host_public}"
                )));
            };
            let _ = writeln!(known_hosts, "{ip} {kind} {key}");
        }
        fs::write(&hosts.known_hosts, known_hosts)?;
        for host in &hosts.hosts {
            host.start_sshd()?;
        }
        Ok(hosts)
    }
}

impl TestHosts {
    /// Starts `count` hosts with key authentication for root (the key is
    /// [`Self::user_key_path`], every host key is in [`Self::known_hosts_path`]).
    ///
    /// Needs root, `ip` (iproute2), `unshare`/`nsenter` (util-linux), `ssh-keygen` and
    /// [`SSHD`]; a missing one is an error that names the package to install.
    pub fn start(count: usize) -> io::Result<TestHosts> {
        Self::builder(count).start()
    }

    /// A builder for `count` hosts with more options (root password).
    pub fn builder(count: usize) -> TestHostsBuilder {
        TestHostsBuilder {
            count,
            root_password: None,
        }
    }

    /// The hosts, in the order of their addresses.
    pub fn hosts(&self) -> &[TestHost] {
        &self.hosts
    }

    /// How many hosts there are.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether there are no hosts.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// A `known_hosts` file listing every host's key under its address.
    pub fn known_hosts_path(&self) -> &Path {
        &self.known_hosts
    }

    /// The private key (ed25519, no passphrase) whose public half is in every host's
    /// `/root/.ssh/authorized_keys`.
    pub fn user_key_path(&self) -> &Path {
        &self.user_key
    }

    /// The bridge's address in the root namespace, which every host reaches.
    pub fn bridge_ip(&self) -> Ipv4Addr {
        self.bridge_ip
    }

    fn make_host(
        &self,
        base: &str,
        index: usize,
        ip: Ipv4Addr,
        user_public: &str,
        password_auth: bool,
    ) -> io::Result<TestHost> {
        let pid = std::process::id();
        let netns = format!("{base}-{index}");
        let veth_number = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        let veth = format!("sltv{pid}n{veth_number}");
        check_ifname(&veth)?;
        let dir = self.dir.join(format!("host{index}"));
        run(Command::new("ip").args(["netns", "add", &netns]))?;
        // Until the holder exists, a failure must still delete the namespace and the veth.
        let made = self.wire_host(&netns, &veth, ip).and_then(|()| {
            prepare_filesystem(&dir, ip, user_public, password_auth)?;
            spawn_holder(&netns, &dir)
        });
        let holder = match made {
            Ok(holder) => holder,
            Err(error) => {
                let _ = quiet(Command::new("ip").args(["link", "del", &veth]));
                let _ = quiet(Command::new("ip").args(["netns", "del", &netns]));
                return Err(error);
            }
        };
        Ok(TestHost {
            ip,
            port: SSH_PORT,
            netns,
            veth,
            dir,
            holder,
            sshd: Mutex::new(None),
        })
    }

    fn wire_host(&self, netns: &str, veth: &str, ip: Ipv4Addr) -> io::Result<()> {
        run(Command::new("ip").args([
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
        ]))?;
        run(Command::new("ip").args(["link", "set", veth, "master", &self.bridge, "up"]))?;
        run(Command::new("ip").args(["-n", netns, "link", "set", "lo", "up"]))?;
        run(Command::new("ip").args([
            "-n",
            netns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "eth0",
        ]))?;
        run(Command::new("ip").args(["-n", netns, "link", "set", "eth0", "up"]))?;
        run(Command::new("ip").args([
            "-n",
            netns,
            "route",
            "add",
            "default",
            "via",
            &self.bridge_ip.to_string(),
        ]))
    }
}

impl Index<usize> for TestHosts {
    type Output = TestHost;

    fn index(&self, index: usize) -> &TestHost {
        &self.hosts[index]
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            kill_namespace(&host.netns);
            if let Ok(mut sshd) = host.sshd.lock()
                && let Some(mut child) = sshd.take()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = host.holder.kill();
            let _ = host.holder.wait();
            let _ = quiet(Command::new("ip").args(["netns", "del", &host.netns]));
            let _ = quiet(Command::new("ip").args(["link", "del", &host.veth]));
        }
        let _ = quiet(Command::new("ip").args(["link", "del", &self.bridge]));
        let _ = quiet(Command::new("umount").arg("-l").arg(&self.dir));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl TestHost {
    /// Where this host's overlay upper directories live (`upper/etc`, `upper/usr/bin`, …):
    /// everything the host changed in an overlaid directory, seen from the root namespace.
    pub fn root_dir(&self) -> &Path {
        &self.dir
    }

    /// The file `p` (absolute) as this host sees it, readable from the test process.
    pub fn path(&self, p: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.holder.id())).join(p.trim_start_matches('/'))
    }

    /// `user@ip:port` for messages.
    pub fn label(&self) -> String {
        format!("root@{}:{}", self.ip, self.port)
    }

    /// Runs `sh -c cmd` in the host's network and mount namespaces (not over SSH).
    pub fn exec(&self, cmd: &str) -> Output {
        self.nsenter()
            .args(["-m", "-n", "--", "sh", "-c", cmd])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run nsenter for test host {}: {e}", self.ip))
    }

    /// Stops the host's `sshd` (new connections are refused; processes it started stay).
    pub fn stop_sshd(&self) {
        let mut sshd = self
            .sshd
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut child) = sshd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the host's `sshd` again (or the first time) and waits until it listens.
    pub fn start_sshd(&self) -> io::Result<()> {
        let mut sshd = self
            .sshd
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if sshd.is_some() {
            return Ok(());
        }
        let log_path = self.sshd_log_path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut child = self
            .nsenter()
            .args([
                "-m",
                "-n",
                "--",
                SSHD,
                "-D",
                "-e",
                "-f",
                "/etc/ssh/sshd_config",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "sshd of test host {} exited ({status}): {}",
                    self.ip,
                    fs::read_to_string(&log_path).unwrap_or_default()
                )));
            }
            // The listening socket shows in the namespace's table without connecting to it,
            // so readiness checks leave no connection in the sshd log.
            let listening = self.exec(&format!("ss -Hltn 'sport = :{}'", self.port));
            if !String::from_utf8_lossy(&listening.stdout).trim().is_empty() {
                *sshd = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(format!(
                    "sshd of test host {} did not listen within {READY_TIMEOUT:?}: {}",
                    self.ip,
                    fs::read_to_string(&log_path).unwrap_or_default()
                )));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The log `sshd -D -e` writes (`LogLevel VERBOSE`: connections, accepted keys).
    pub fn sshd_log_path(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    /// The number of TCP connections accepted by `sshd` so far (from its log).
    pub fn accepted_connections(&self) -> usize {
        fs::read_to_string(self.sshd_log_path())
            .unwrap_or_default()
            .lines()
            .filter(|line| line.starts_with("Connection from "))
            .count()
    }

    /// Cuts the host off the bridge (its veth goes down): packets stop, sockets stay open.
    pub fn cut_network(&self) {
        run(Command::new("ip").args(["link", "set", &self.veth, "down"]))
            .unwrap_or_else(|e| panic!("cut the network of test host {}: {e}", self.ip));
    }

    /// Limits what reaches the host to `rate` (tc's syntax, e.g. `64kbit`), shaping the
    /// bridge side of its link, so that a transfer to it lasts long enough to be cut.
    pub fn limit_incoming_rate(&self, rate: &str) {
        run(Command::new("tc").args([
            "qdisc", "replace", "dev", &self.veth, "root", "tbf", "rate", rate, "burst", "4kb",
            "latency", "5s",
        ]))
        .unwrap_or_else(|e| panic!("limit the rate to test host {}: {e}", self.ip));
    }

    /// Lifts [`TestHost::limit_incoming_rate`].
    pub fn clear_incoming_rate(&self) {
        run(Command::new("tc").args(["qdisc", "del", "dev", &self.veth, "root"]))
            .unwrap_or_else(|e| panic!("clear the rate limit of test host {}: {e}", self.ip));
    }

    /// Reconnects the host to the bridge and waits until the root namespace reaches it again
    /// (the neighbour entry that failed while it was cut is flushed; a probe connection to its
    /// SSH port shows in the sshd log).
    pub fn restore_network(&self) {
        run(Command::new("ip").args(["link", "set", &self.veth, "up"]))
            .unwrap_or_else(|e| panic!("restore the network of test host {}: {e}", self.ip));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let _ = quiet(Command::new("ip").args(["neigh", "flush", "to", &self.ip.to_string()]));
            let probe = TcpStream::connect_timeout(
                &SocketAddr::from((self.ip, self.port)),
                Duration::from_secs(1),
            );
            match probe {
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "test host {} unreachable {READY_TIMEOUT:?} after its network was restored: {e}",
                    self.ip
                ),
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Whether TCP connections to the host's SSH port from the root namespace succeed.
    pub fn reachable(&self) -> bool {
        TcpStream::connect_timeout(
            &SocketAddr::from((self.ip, self.port)),
            Duration::from_secs(2),
        )
        .is_ok()
    }

    fn set_root_password(&self, password: &str) -> io::Result<()> {
        let ip = self.ip;
        let mut child = self
            .nsenter()
            .args(["-m", "--", "chpasswd"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "root:{password}")?;
        }
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "chpasswd on test host {ip} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }

        Ok(())
    }

    fn upper(&self, p: &str) -> PathBuf {
        self.dir.join("upper").join(p.trim_start_matches('/'))
    }

    fn nsenter(&self) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("-t")
            .arg(self.holder.id().to_string())
            .current_dir("/");
        command
    }
}

/// Checks that this process can make test hosts, naming what is missing.
fn check_prerequisites() -> io::Result<()> {
    let uid = Command::new("id").arg("-u").output()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err(io::Error::other(
            "test hosts need root (network and mount namespaces); run the tests as root",
        ));
    }
    for (program, package) in [
        (SSHD, "openssh-server"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
        ("/usr/bin/nsenter", "util-linux"),
        ("/usr/bin/unshare", "util-linux"),
    ] {
        if !Path::new(program).exists() {
            return Err(io::Error::other(format!(
                "{program} is missing: install Debian's {package} (scripts/test does)"
            )));
        }
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Err(io::Error::other(
            "`ip` is missing: install Debian's iproute2 (scripts/test does)",
        ));
    }
    Ok(())
}

/// A `/24` in `10.250.0.0/16` that no interface or route of the root namespace uses.
fn free_subnet(pid: u32, instance: u32) -> io::Result<u8> {
    let addresses = output(Command::new("ip").args(["-o", "-4", "addr", "show"]))?;
    let routes = output(Command::new("ip").args(["-4", "route", "show", "table", "all"]))?;
    let used = |k: u32| {
        let prefix = format!("10.250.{k}.");
        addresses.contains(&prefix) || routes.contains(&prefix)
    };
    let start = (pid.wrapping_mul(7).wrapping_add(instance.wrapping_mul(13))) % 250 + 1;
    (0..250)
        .map(|offset| (start + offset - 1) % 250 + 1)
        .find(|&k| !used(k))
        .and_then(|k| u8::try_from(k).ok())
        .ok_or_else(|| io::Error::other("no free /24 left in 10.250.0.0/16 for test hosts"))
}

/// Writes the host's sshd configuration, host key and root's `authorized_keys` into its
/// upper directories, which carry the ownership and mode of the directories they overlay.
fn prepare_filesystem(
    dir: &Path,
    ip: Ipv4Addr,
    user_public: &str,
    password_auth: bool,
) -> io::Result<()> {
    for real in OVERLAID_DIRS {
        let relative = real.trim_start_matches('/');
        let upper = dir.join("upper").join(relative);
        let work = dir.join("work").join(relative);
        fs::create_dir_all(&upper)?;
        fs::create_dir_all(&work)?;
        let metadata = fs::metadata(real)?;
        chown(&upper, Some(metadata.uid()), Some(metadata.gid()))?;
        fs::set_permissions(&upper, fs::Permissions::from_mode(metadata.mode() & 0o7777))?;
    }
    let ssh_dir = dir.join("upper/etc/ssh");
    fs::create_dir_all(&ssh_dir)?;
    keygen(
        &ssh_dir.join("ssh_host_ed25519_key"),
        &format!("testkit-host-{ip}"),
    )?;
    let yes_no = if password_auth { "yes" } else { "no" };
    fs::write(
        ssh_dir.join("sshd_config"),
        format!(
            "Port {SSH_PORT}\n\
             ListenAddress {ip}\n\
             HostKey /etc/ssh/ssh_host_ed25519_key\n\
             PermitRootLogin yes\n\
             PubkeyAuthentication yes\n\
             AuthorizedKeysFile .ssh/authorized_keys\n\
             PasswordAuthentication {yes_no}\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes yes\n\
             PidFile /run/sshd.pid\n\
             LogLevel VERBOSE\n\
             MaxSessions 64\n\
             MaxStartups 64:30:128\n\
             Subsystem sftp internal-sftp\n"
        ),
    )?;
    let root_ssh = dir.join("upper/root/.ssh");
    fs::create_dir_all(&root_ssh)?;
    fs::set_permissions(&root_ssh, fs::Permissions::from_mode(0o700))?;
    let authorized = root_ssh.join("authorized_keys");
    fs::write(&authorized, user_public)?;
    fs::set_permissions(&authorized, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Starts the process that owns the host's mount namespace (overlays mounted) in its
/// network namespace, and waits until the overlays are in place.
fn spawn_holder(netns: &str, dir: &Path) -> io::Result<Child> {
    let dir_text = dir
        .to_str()
        .ok_or_else(|| io::Error::other(format!("non-UTF-8 path {}", dir.display())))?;
    let mut script = String::from("set -e\n");
    // The overlay of the directory holding `dir` hides `dir` (a tmpfs mounted below it), so
    // it is mounted last, once the other overlays have their upper directories.
    let mut order = OVERLAID_DIRS;
    order.sort_by_key(|real| dir.starts_with(real));
    for real in order {
        let relative = real.trim_start_matches('/');
        let _ = writeln!(
            script,
            "mount -t overlay overlay -o lowerdir={real},upperdir={dir_text}/upper/{relative},workdir={dir_text}/work/{relative} {real}"
        );
    }
    script.push_str(
        "mkdir -p /run/sshd && chmod 0755 /run/sshd\n: > /run/testkit-ready\nexec sleep infinity\n",
    );
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
        ])
        .args(["sh", "-c", &script])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let ready = PathBuf::from(format!("/proc/{}/root/run/testkit-ready", child.id()));
    let deadline = Instant::now() + READY_TIMEOUT;
    while !ready.exists() {
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            return Err(io::Error::other(format!(
                "mounting the overlays of test host namespace {netns} failed ({status}): {stderr}"
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "the overlays of test host namespace {netns} were not ready within {READY_TIMEOUT:?}"
            )));
        }
        thread::sleep(POLL_INTERVAL);
    }
    Ok(child)
}

/// Kills every process in the network namespace until none is left.
fn kill_namespace(netns: &str) {
    for _ in 0..50 {
        let Ok(pids) = output(Command::new("ip").args(["netns", "pids", netns])) else {
            return;
        };
        let pids: BTreeSet<&str> = pids.split_whitespace().collect();
        if pids.is_empty() {
            return;
        }
        let _ = quiet(Command::new("kill").arg("-KILL").args(&pids));
        thread::sleep(POLL_INTERVAL);
    }
}

/// Removes namespaces, interfaces and tmpfs mounts left by test processes that are gone.
fn remove_stale_leftovers() {
    let dead = |name: &str| {
        owner_pid(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    if let Ok(list) = output(Command::new("ip").args(["netns", "list"])) {
        for name in list
            .lines()
            .filter_map(|line| line.split_whitespace().next())
        {
            if dead(name) {
                kill_namespace(name);
                let _ = quiet(Command::new("ip").args(["netns", "del", name]));
            }
        }
    }
    if let Ok(links) = output(Command::new("ip").args(["-o", "link", "show"])) {
        for line in links.lines() {
            let Some(name) = line
                .split(": ")
                .nth(1)
                .map(|n| n.split('@').next().unwrap_or(n))
            else {
                continue;
            };
            if dead(name) {
                let _ = quiet(Command::new("ip").args(["link", "del", name]));
            }
        }
    }
    let temp = std::env::temp_dir();
    if let Ok(mounts) = fs::read_to_string("/proc/self/mountinfo") {
        for mount_point in mounts.lines().filter_map(|line| line.split(' ').nth(4)) {
            let path = Path::new(mount_point);
            if path.parent() == Some(temp.as_path())
                && path.file_name().and_then(|n| n.to_str()).is_some_and(dead)
            {
                let _ = quiet(Command::new("umount").arg("-l").arg(path));
                let _ = fs::remove_dir_all(path);
            }
        }
    }
}

/// The process id in a name this module gives (`slt<pid>-…`, `sltb<pid>n…`, `sltv<pid>n…`).
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("slt")?;
    let rest = rest.strip_prefix(['b', 'v']).unwrap_or(rest);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = rest[digits.len()..].chars().next();
    if !matches!(after, Some('-' | 'n')) {
        return None;
    }
    digits.parse().ok()
}

fn check_ifname(name: &str) -> io::Result<()> {
    if name.len() > MAX_IFNAME {
        return Err(io::Error::other(format!(
            "interface name {name} is longer than {MAX_IFNAME} characters"
        )));
    }
    Ok(())
}

fn keygen(path: &Path, comment: &str) -> io::Result<()> {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path))
}

/// Runs a command, turning a failure into an error with its stderr.
fn run(command: &mut Command) -> io::Result<()> {
    output(command).map(drop)
}

fn output(command: &mut Command) -> io::Result<String> {
    let out = command.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn quiet(command: &mut Command) -> io::Result<()> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn owner_pids_come_from_the_names_this_module_gives() {
        assert_eq!(owner_pid("slt1234-0-1"), Some(1234));
        assert_eq!(owner_pid("sltb99n3"), Some(99));
        assert_eq!(owner_pid("sltv7n12"), Some(7));
        assert_eq!(owner_pid("slt"), None);
        assert_eq!(owner_pid("sltx1-2"), None);
        assert_eq!(owner_pid("slt12"), None);
        assert_eq!(owner_pid("eth0"), None);
    }
}
