//! The SSH layer against real OpenSSH servers in network namespaces (`testkit::netns`).

use std::fs;
use std::path::Path;
use std::pin::Pin;
use std::process::Command;
use std::task::{Context, Poll};
use std::time::Duration;

use deploy::secret::Secret;
use deploy::ssh::{
    ConnectOptions, Connection, ExitStatus, Fleet, HostKeyPolicy, RemoteCommand, SshAuth, SshError,
    SshTarget,
};
use testkit::netns::{TestHost, TestHosts};
use tokio::io::{AsyncRead, ReadBuf};

/// Generous bound for operations that must end by themselves; reaching it means a hang.
const HANG_GUARD: Duration = Duration::from_secs(120);

fn start(count: usize) -> TestHosts {
    TestHosts::start(count).unwrap_or_else(|e| panic!("start the test hosts: {e}"))
}

fn key_target(hosts: &TestHosts, host: &TestHost) -> SshTarget {
    SshTarget::new(
        host.ip.into(),
        "root",
        SshAuth::KeyFile {
            path: hosts.user_key_path().to_path_buf(),
            passphrase: None,
        },
    )
}

fn options(known_hosts: &Path) -> ConnectOptions {
    ConnectOptions {
        host_key_policy: HostKeyPolicy::Strict,
        known_hosts: known_hosts.to_path_buf(),
        connect_timeout: Duration::from_secs(20),
        keepalive_interval: Duration::from_secs(1),
        keepalive_max: 2,
    }
}

async fn connect(hosts: &TestHosts, index: usize) -> Connection {
    Connection::connect(
        &key_target(hosts, &hosts[index]),
        &options(hosts.known_hosts_path()),
    )
    .await
    .unwrap_or_else(|e| panic!("connect: {e}"))
}

fn sh(command: &str) -> String {
    let output = Command::new("sh").args(["-c", command]).output().unwrap();
    assert!(output.status.success(), "{command}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn key_auth_runs_commands_with_env_status_and_stderr_over_one_connection() {
    let hosts = start(1);
    let connection = connect(&hosts, 0).await;
    assert_eq!(connection.host(), format!("root@{}:22", hosts[0].ip));

    let odd = "it's \"quoted\" $HOME `id` \\ ; & | * ?\nsecond line\ttab";
    let output = connection
        .run(
            &RemoteCommand::new("printf '%s' \"$ODD\"; printf '|%s' \"$EMPTY\" \"$(id -un)\"")
                .env("ODD", odd)
                .env("EMPTY", ""),
        )
        .await
        .unwrap();
    assert!(output.success(), "{output:?}");
    assert_eq!(output.stdout_text(), format!("{odd}||root"));

    let output = connection
        .run(&RemoteCommand::new("echo to-out; echo to-err >&2; exit 7"))
        .await
        .unwrap();
    assert_eq!(output.status, ExitStatus::Code(7));
    assert_eq!(output.stdout_text(), "to-out\n");
    assert_eq!(output.stderr_text(), "to-err\n");

    let error = connection
        .run_checked(&RemoteCommand::new("echo broken >&2; false"))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("root@{}:22", hosts[0].ip))
            && message.contains("exit code 1")
            && message.contains("broken"),
        "{message}"
    );

    // Concurrent commands share the connection: one channel each.
    let runs = (0..8).map(|i| {
        let connection = connection.clone();
        async move {
            connection
                .run_checked(&RemoteCommand::new("echo $N").env("N", i.to_string()))
                .await
        }
    });
    let outputs = futures::future::join_all(runs).await;
    for (i, output) in outputs.into_iter().enumerate() {
        assert_eq!(output.unwrap().stdout_text(), format!("{i}\n"));
    }
    assert_eq!(hosts[0].accepted_connections(), 1);
    let established = hosts[0].exec("ss -Htn state established '( sport = :22 )'");
    assert_eq!(
        String::from_utf8_lossy(&established.stdout).lines().count(),
        1,
        "{established:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn password_auth_and_encrypted_keys_work_and_wrong_secrets_are_refused() {
    let hosts = TestHosts::builder(1)
        .root_password("correct horse")
        .start()
        .unwrap_or_else(|e| panic!("start the test hosts: {e}"));
    let host = &hosts[0];
    let options = options(hosts.known_hosts_path());
    let password = |value: &str| {
        SshTarget::new(
            host.ip.into(),
            "root",
            SshAuth::Password(Secret::new(value.to_owned())),
        )
    };
    let connection = Connection::connect(&password("correct horse"), &options)
        .await
        .unwrap();
    let output = connection
        .run_checked(&RemoteCommand::new("id -u"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text(), "0\n");

    let error = Connection::connect(&password("wrong"), &options)
        .await
        .err()
        .unwrap();
    assert!(matches!(error, SshError::AuthRefused { .. }), "{error}");
    assert!(!format!("{error} {error:?}").contains("wrong"), "{error:?}");

    let dir = tempfile::tempdir().unwrap();
    let encrypted = dir.path().join("id_encrypted");
    fs::copy(hosts.user_key_path(), &encrypted).unwrap();
    sh(&format!(
        "ssh-keygen -q -p -N 'pass phrase' -f {}",
        encrypted.display()
    ));
    let with_passphrase = |value: &str| {
        SshTarget::new(
            host.ip.into(),
            "root",
            SshAuth::KeyFile {
                path: encrypted.clone(),
                passphrase: Some(Secret::new(value.to_owned())),
            },
        )
    };
    Connection::connect(&with_passphrase("pass phrase"), &options)
        .await
        .unwrap()
        .run_checked(&RemoteCommand::new("true"))
        .await
        .unwrap();
    let error = Connection::connect(&with_passphrase("not it"), &options)
        .await
        .err()
        .unwrap();
    assert!(matches!(error, SshError::KeyFile { .. }), "{error}");
    assert!(error.to_string().contains("id_encrypted"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_keys_authenticate() {
    let hosts = start(1);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let added = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        Command::new("ssh-add")
            .arg(hosts.user_key_path())
            .env("SSH_AUTH_SOCK", &socket)
            .output()
            .is_ok_and(|output| output.status.success())
    });
    assert!(added, "ssh-add to the test agent failed");
    let target = SshTarget::new(
        hosts[0].ip.into(),
        "root",
        SshAuth::Agent {
            socket: Some(socket.clone()),
        },
    );
    let result = Connection::connect(&target, &options(hosts.known_hosts_path())).await;
    let _ = agent.kill();
    let _ = agent.wait();
    let output = result
        .unwrap()
        .run_checked(&RemoteCommand::new("echo via-agent"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text(), "via-agent\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_keys_are_checked_against_known_hosts() {
    let hosts = start(2);
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    let target = key_target(&hosts, &hosts[0]);
    let label = format!("root@{}:22", hosts[0].ip);

    let error = Connection::connect(&target, &options(&known_hosts))
        .await
        .err()
        .unwrap();
    let message = error.to_string();
    assert!(
        matches!(error, SshError::UnknownHostKey { .. }),
        "{message}"
    );
    assert!(
        message.contains(&label) && message.contains("--insecure-accept-new-host-keys"),
        "{message}"
    );
    assert!(!known_hosts.exists());

    let accept_new = ConnectOptions {
        host_key_policy: HostKeyPolicy::AcceptNew,
        ..options(&known_hosts)
    };
    Connection::connect(&target, &accept_new).await.unwrap();
    let recorded = fs::read_to_string(&known_hosts).unwrap();
    let expected = fs::read_to_string(hosts.known_hosts_path()).unwrap();
    assert_eq!(
        recorded
            .lines()
            .next()
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>()),
        expected
            .lines()
            .next()
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>())
    );
    Connection::connect(&target, &options(&known_hosts))
        .await
        .unwrap();

    // Host 1's key recorded under host 0's address: a changed key, refused by both policies.
    let other_key = expected.lines().nth(1).unwrap();
    let (_, key) = other_key.split_once(' ').unwrap();
    fs::write(&known_hosts, format!("{} {key}\n", hosts[0].ip)).unwrap();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        let options = ConnectOptions {
            host_key_policy: policy,
            ..options(&known_hosts)
        };
        let error = Connection::connect(&target, &options).await.err().unwrap();
        assert!(
            matches!(error, SshError::ChangedHostKey { line: 1, .. }),
            "{error}"
        );
        assert!(error.to_string().contains(&label), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_streams_64_mib_intact() {
    let hosts = start(1);
    let connection = connect(&hosts, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    sh(&format!(
        "head -c 67108864 /dev/urandom > {}",
        data.display()
    ));
    let local = sh(&format!("sha256sum < {}", data.display()));
    let file = tokio::fs::File::open(&data).await.unwrap();
    let output = tokio::time::timeout(
        HANG_GUARD,
        connection
            .run_with_input_checked(&RemoteCommand::new("tee /tmp/received | sha256sum"), file),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(output.stdin_bytes, 64 << 20);
    assert_eq!(output.stdout_text(), local);
    assert_eq!(
        fs::metadata(hosts[0].path("/tmp/received")).unwrap().len(),
        64 << 20
    );
    assert!(!Path::new("/tmp/received").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_sshd_is_a_clear_error_naming_the_host() {
    let hosts = start(1);
    hosts[0].stop_sshd();
    let error = Connection::connect(
        &key_target(&hosts, &hosts[0]),
        &options(hosts.known_hosts_path()),
    )
    .await
    .err()
    .unwrap();
    let message = error.to_string();
    assert!(matches!(error, SshError::Connect { .. }), "{message}");
    assert!(
        message.contains(&format!("root@{}:22", hosts[0].ip)) && message.contains("sshd"),
        "{message}"
    );
    hosts[0].start_sshd().unwrap();
    connect(&hosts, 0).await;
}

/// Zeros without end; cuts the host's network once `cut_after` bytes were read.
struct CuttingReader<'a> {
    host: &'a TestHost,
    produced: u64,
    cut_after: u64,
}

impl AsyncRead for CuttingReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.produced < self.cut_after
            && self.produced + buf.remaining() as u64 >= self.cut_after
        {
            self.host.cut_network();
        }
        let n = buf.remaining();
        buf.put_slice(&vec![0; n]);
        self.produced += n as u64;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_network_mid_transfer_is_an_error_not_a_hang() {
    let hosts = start(1);
    let connection = connect(&hosts, 0).await;
    let input = CuttingReader {
        host: &hosts[0],
        produced: 0,
        cut_after: 16 << 20,
    };
    let result = tokio::time::timeout(
        HANG_GUARD,
        connection.run_with_input(&RemoteCommand::new("cat > /dev/null"), input),
    )
    .await
    .expect("the transfer hung after the network was cut");
    hosts[0].restore_network();
    let error = result.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, SshError::ConnectionLost { .. }),
        "{message}"
    );
    assert!(
        message.contains(&format!("root@{}:22", hosts[0].ip)),
        "{message}"
    );
    assert!(connection.is_closed());
    connect(&hosts, 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_connects_in_parallel_and_reports_each_failed_host() {
    let hosts = start(3);
    let targets: Vec<SshTarget> = hosts
        .hosts()
        .iter()
        .map(|host| key_target(&hosts, host))
        .collect();
    let options = options(hosts.known_hosts_path());
    let fleet = Fleet::connect(&targets, &options, 2).await.unwrap();
    let results = fleet
        .for_each(2, |connection| async move {
            connection
                .run_checked(
                    &RemoteCommand::new("echo \"$HOST\" > /etc/whoami; cat /etc/whoami")
                        .env("HOST", connection.host()),
                )
                .await
        })
        .await;
    assert_eq!(results.len(), 3);
    for (host, result) in &results {
        assert_eq!(result.as_ref().unwrap().stdout_text(), format!("{host}\n"));
    }
    for host in hosts.hosts() {
        assert_eq!(
            fs::read_to_string(host.path("/etc/whoami")).unwrap(),
            format!("root@{}:22\n", host.ip)
        );
    }
    assert!(!Path::new("/etc/whoami").exists());

    hosts[1].stop_sshd();
    let error = Fleet::connect(&targets, &options, 2).await.err().unwrap();
    assert_eq!(error.failures.len(), 1);
    assert_eq!(error.failures[0].host(), format!("root@{}:22", hosts[1].ip));
    assert!(error.to_string().contains("1 host(s) failed"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_hosts_have_private_filesystems_and_keep_background_processes() {
    let hosts = start(2);
    let connection = connect(&hosts, 0).await;
    connection
        .run_checked(&RemoteCommand::new(
            "printf '#!/bin/sh\\necho stand-in\\n' > /usr/bin/testkit-stand-in\n\
             chmod +x /usr/bin/testkit-stand-in\n\
             nohup sh -c 'echo $$ > /run/background.pid; exec sleep 600' >/dev/null 2>&1 &",
        ))
        .await
        .unwrap();
    let installed = connection
        .run_checked(&RemoteCommand::new("testkit-stand-in"))
        .await
        .unwrap();
    assert_eq!(installed.stdout_text(), "stand-in\n");
    assert!(
        hosts[0]
            .root_dir()
            .join("upper/usr/bin/testkit-stand-in")
            .exists()
    );
    assert!(!hosts[1].path("/usr/bin/testkit-stand-in").exists());
    assert!(!Path::new("/usr/bin/testkit-stand-in").exists());
    connection.close().await;
    let pid = fs::read_to_string(hosts[0].path("/run/background.pid")).unwrap();
    assert!(Path::new(&format!("/proc/{}", pid.trim())).exists());
    let to_other_host = hosts[0].exec(&format!(
        "bash -c 'exec 3<>/dev/tcp/{}/22 && head -c 4 <&3'",
        hosts[1].ip
    ));
    assert_eq!(String::from_utf8_lossy(&to_other_host.stdout), "SSH-");
    drop(hosts);
    // Killed: gone, or a zombie until its parent reaps it.
    let state = fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    assert!(state.is_empty() || state.contains(") Z "), "{state}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_other_than_root_runs_commands_through_sudo_with_their_env() {
    let hosts = start(1);
    let host = &hosts[0];
    // A user who may log in with the test key (password `*`: no password, but not locked)
    // and may run anything through sudo without a password.
    let setup = host.exec(
        "useradd -m -d /var/lib/deployer -s /bin/bash deployer && usermod -p '*' deployer \
         && mkdir -p /var/lib/deployer/.ssh \
         && cp /root/.ssh/authorized_keys /var/lib/deployer/.ssh/ \
         && chown -R deployer:deployer /var/lib/deployer/.ssh && chmod 700 /var/lib/deployer/.ssh \
         && echo 'deployer ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/deployer \
         && chmod 0440 /etc/sudoers.d/deployer",
    );
    assert!(setup.status.success(), "{setup:?}");
    let mut target = key_target(&hosts, host);
    target.user = "deployer".to_owned();
    assert!(!target.is_root());
    let connection = Connection::connect(&target, &options(hosts.known_hosts_path()))
        .await
        .unwrap_or_else(|e| panic!("connect as deployer: {e}"));
    let output = connection
        .run_checked(
            &RemoteCommand::new("echo \"$(id -u) $SUDO_USER $GREETING\"")
                .env("GREETING", "it's $HOME"),
        )
        .await
        .unwrap();
    assert_eq!(output.stdout_text(), "0 deployer it's $HOME\n");
}
