//! Shell snippets the steps run on the hosts: POSIX `sh` with coreutils, nothing more.
//!
//! Everything apply adds to a host's shared files carries a marker naming the cluster, so
//! that delete removes exactly that and a host ends as it was before.

use std::fmt::Write as _;
use std::net::IpAddr;

use base64::Engine as _;

pub use crate::ssh::quote;

/// The marker ending every `/etc/hosts` line apply writes for `cluster`, for `purpose`
/// (`alias`, `registry`, `apiserver`).
fn hosts_marker(cluster: &str, purpose: &str) -> String {
    format!("# sealer:{cluster}:{purpose}")
}

/// Removes the `/etc/hosts` lines written for `cluster` and `purpose`.
pub fn remove_hosts_lines(cluster: &str, purpose: &str) -> String {
    remove_lines_in(HOSTS_FILE, cluster, purpose)
}

/// Replaces the `/etc/hosts` lines of `cluster` and `purpose` with `entries` (address, names).
pub fn set_hosts_lines(cluster: &str, purpose: &str, entries: &[(IpAddr, Vec<String>)]) -> String {
    set_lines_in(HOSTS_FILE, cluster, purpose, entries)
}

/// The hosts file.
const HOSTS_FILE: &str = "/etc/hosts";

/// Removes the marked lines from `file`, rewriting it in place (it may be a bind mount,
/// which a rename would break).
fn remove_lines_in(file: &str, cluster: &str, purpose: &str) -> String {
    let marker = quote(&format!(" {}$", hosts_marker(cluster, purpose)));
    let file = quote(file);
    format!(
        "if [ -f {file} ]; then kept=$(mktemp) && {{ grep -v -- {marker} {file} || true; }} >\"$kept\" && cat \"$kept\" >{file} && rm -f \"$kept\"; fi\n"
    )
}

fn set_lines_in(
    file: &str,
    cluster: &str,
    purpose: &str,
    entries: &[(IpAddr, Vec<String>)],
) -> String {
    let mut script = remove_lines_in(file, cluster, purpose);
    let marker = hosts_marker(cluster, purpose);
    for (address, names) in entries {
        let line = format!("{address} {} {marker}", names.join(" "));
        let _ = writeln!(script, "echo {} >>{}", quote(&line), quote(file));
    }
    script
}

/// Writes `content` to `path` on the host with `mode`, creating its directory; the bytes go
/// through base64 so that any content survives the shell. A failed write ends the script
/// with status 1.
pub fn write_file(path: &str, content: &[u8], mode: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    let path = quote(path);
    format!(
        "mkdir -p \"$(dirname {path})\" && echo {encoded} | base64 -d >{path}.sealer-tmp && chmod {mode} {path}.sealer-tmp && mv -f {path}.sealer-tmp {path} || exit 1\n"
    )
}

/// The file beside `path` naming the cluster apply wrote `path` for: shared directories
/// (`/etc/containerd/certs.d`, `/etc/docker`, `/etc/systemd/system`) hold files of others,
/// and formats such as JSON have no room for a comment.
fn owner_file(path: &str) -> String {
    format!("{path}.sealer-owner")
}

/// Writes `content` to `path` unless a file apply did not write for `cluster` is already
/// there, which is kept with a warning.
pub fn write_owned_file(cluster: &str, path: &str, content: &str) -> String {
    owned_by(cluster, path, &write_file(path, content.as_bytes(), "0644"))
}

/// [`write_owned_file`] with the content read from the command's stdin, mode 0600: for
/// secrets, which thus appear in no command line or log.
pub fn write_owned_file_from_stdin(cluster: &str, path: &str) -> String {
    owned_by(cluster, path, &write_private_file_from_stdin(path))
}

/// Writes the command's stdin to `path` with `mode` (and readable by nobody else while it
/// is written), creating its directory; a failed write ends the script with status 1.
pub fn write_file_from_stdin(path: &str, mode: &str) -> String {
    let path = quote(path);
    format!(
        "mkdir -p \"$(dirname {path})\" && (umask 077 && cat >{path}.sealer-tmp) && chmod {mode} {path}.sealer-tmp && mv -f {path}.sealer-tmp {path} || exit 1\n"
    )
}

/// [`write_file_from_stdin`] with mode 0600: for secrets.
pub fn write_private_file_from_stdin(path: &str) -> String {
    write_file_from_stdin(path, "0600")
}

/// How the scripts of [`write_owned_file`] start the warning (on stderr, followed by the
/// path) when they keep a file apply did not write.
pub const KEPT_FILE_WARNING: &str = "sealer: kept, as it was not written by sealer: ";

/// The files a script's stderr says it kept (see [`KEPT_FILE_WARNING`]).
pub fn kept_files(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix(KEPT_FILE_WARNING))
        .collect()
}

/// Runs `write` (which writes `path`) unless a file apply did not write for `cluster` is
/// already there, which is kept with a warning; marks the file as the cluster's.
fn owned_by(cluster: &str, path: &str, write: &str) -> String {
    let quoted = quote(path);
    let owner = quote(&owner_file(path));
    let cluster = quote(cluster);
    format!(
        "if [ ! -e {quoted} ] || [ \"$(cat {owner} 2>/dev/null)\" = {cluster} ]; then\n{write}echo {cluster} >{owner}\nelse\necho \"{KEPT_FILE_WARNING}\"{quoted} >&2\nfi\n"
    )
}

/// Removes `path` if apply wrote it for `cluster`, then the directories above it up to
/// `keep_above` (exclusive) that are left empty.
pub fn remove_owned_file(cluster: &str, path: &str, keep_above: &str) -> String {
    let quoted = quote(path);
    let owner = quote(&owner_file(path));
    let cluster = quote(cluster);
    let mut script = format!(
        "if [ \"$(cat {owner} 2>/dev/null)\" = {cluster} ]; then rm -f {quoted} {owner}; fi\n"
    );
    let mut dir = parent(path);
    while dir.len() > keep_above.len() && dir.starts_with(keep_above) {
        let _ = writeln!(script, "rmdir {} 2>/dev/null || true", quote(dir));
        dir = parent(dir);
    }
    script
}

/// `path` without its last component.
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(head, _)| head)
}

/// Runs `script` from `dir` when `dir` exists, and succeeds doing nothing otherwise (clean
/// phases must work after a failed or partial install).
pub fn when_dir_exists(dir: &str, script: &str) -> String {
    let dir = quote(dir);
    format!("if [ -d {dir} ]; then cd {dir} || exit 1\n{script}\nfi\n")
}

/// Runs the image's `scripts/<name>` with bash when the rootfs has it.
pub fn image_script(rootfs: &str, name: &str, args: &[&str]) -> String {
    let mut command = format!("bash {}", quote(name));
    for arg in args {
        command.push(' ');
        command.push_str(&quote(arg));
    }
    format!("cd {} && {command}\n", quote(&format!("{rootfs}/scripts")))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn sh(script: &str) -> std::process::Output {
        Command::new("sh").arg("-c").arg(script).output().unwrap()
    }

    #[test]
    fn quoting_keeps_every_byte() {
        for text in [
            "plain",
            "",
            "it's",
            "a b",
            "$HOME",
            "`x`",
            "line\nbreak",
            "'\"\\",
        ] {
            let out = sh(&format!("printf %s {}", quote(text)));
            assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
        }
    }

    #[test]
    fn secrets_are_written_from_stdin_privately_and_owned() {
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet/config.json").display().to_string();
        let script = write_owned_file_from_stdin("c", &path);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "secret\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_to_string(format!("{path}.sealer-owner")).unwrap(),
            "c\n"
        );
    }

    #[test]
    fn a_failed_write_fails_the_script_and_marks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").unwrap();
        let path = blocker.join("file").display().to_string();
        let out = sh(&format!(
            "{}echo after",
            write_owned_file("c", &path, "content")
        ));
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty(), "the script stops there");
        assert!(!std::path::Path::new(&format!("{path}.sealer-owner")).exists());
    }

    #[test]
    fn written_files_keep_any_content_and_owned_ones_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file").display().to_string();
        let content = "'quotes' $VAR `cmd`\n";
        assert!(sh(&write_owned_file("c", &path, content)).status.success());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);

        std::fs::write(&path, "someone else's\n").unwrap();
        std::fs::remove_file(format!("{path}.sealer-owner")).unwrap();
        let out = sh(&write_owned_file("c", &path, content));
        assert_eq!(
            kept_files(&String::from_utf8_lossy(&out.stderr)),
            [path.as_str()]
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone else's\n");

        sh(&remove_owned_file(
            "c",
            &path,
            &dir.path().display().to_string(),
        ));
        assert!(
            std::path::Path::new(&path).exists(),
            "a foreign file is kept"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(sh(&write_owned_file("c", &path, content)).status.success());
        sh(&remove_owned_file(
            "c",
            &path,
            &dir.path().display().to_string(),
        ));
        assert!(
            !dir.path().join("sub").exists(),
            "emptied directories are removed"
        );
        assert!(dir.path().exists());
    }

    #[test]
    fn hosts_lines_are_replaced_and_removed_leaving_the_rest_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts");
        let original = "127.0.0.1 localhost\n10.0.0.9 mine # sealer:other:alias\n";
        std::fs::write(&file, original).unwrap();
        let file = file.display().to_string();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..2 {
            let script = set_lines_in(&file, "c", "alias", &[(ip, vec!["a".into(), "b".into()])]);
            assert!(sh(&script).status.success());
        }
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{original}10.0.0.2 a b # sealer:c:alias\n")
        );
        assert!(sh(&remove_lines_in(&file, "c", "alias")).status.success());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
    }

    #[test]
    fn when_dir_exists_skips_a_missing_rootfs() {
        let out = sh(&when_dir_exists("/nonexistent/rootfs", "exit 3"));
        assert!(out.status.success());
        let dir = tempfile::tempdir().unwrap();
        let out = sh(&when_dir_exists(
            &dir.path().display().to_string(),
            "exit 3",
        ));
        assert_eq!(out.status.code(), Some(3));
    }
}
