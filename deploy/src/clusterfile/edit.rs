//! Clusterfiles written by the commands: from `sealer run`'s flags, and the recorded one with
//! hosts added (`scale-up`) or removed (`delete -m/-n`). Only the Cluster document is
//! rewritten; the other documents keep their text.

use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::{Value, json};

/// `sealer run IMAGE -m ... -n ...` as a Clusterfile.
#[derive(Debug, Clone)]
pub struct ClusterFlags {
    /// `--name`.
    pub name: String,
    /// The image.
    pub image: String,
    /// `-m`.
    pub masters: Vec<IpAddr>,
    /// `-n`.
    pub nodes: Vec<IpAddr>,
    /// `-e`.
    pub env: Vec<String>,
    /// `-u`.
    pub user: String,
    /// `-p`.
    pub password: Option<String>,
    /// `--port`.
    pub port: u16,
    /// `--pk`.
    pub key: Option<PathBuf>,
    /// `--pk-passwd`.
    pub key_passphrase: Option<String>,
}

/// The Clusterfile the flags describe.
pub fn from_flags(flags: &ClusterFlags) -> String {
    let mut ssh = json!({ "user": flags.user, "port": flags.port.to_string() });
    if let Some(password) = &flags.password {
        ssh["passwd"] = json!(password);
    }
    if let Some(key) = &flags.key {
        ssh["pk"] = json!(key.display().to_string());
    }
    if let Some(passphrase) = &flags.key_passphrase {
        ssh["pkPasswd"] = json!(passphrase);
    }
    let mut hosts = vec![host_group(&flags.masters, "master")];
    if !flags.nodes.is_empty() {
        hosts.push(host_group(&flags.nodes, "node"));
    }
    let cluster = json!({
        "apiVersion": "sealer.io/v2",
        "kind": "Cluster",
        "metadata": { "name": flags.name },
        "spec": {
            "image": flags.image,
            "env": flags.env,
            "ssh": ssh,
            "hosts": hosts,
        },
    });
    emit(&cluster).unwrap_or_default()
}

/// The recorded Clusterfile with a host group for `masters` and one for `nodes`.
pub fn with_hosts_added(
    text: &str,
    masters: &[IpAddr],
    nodes: &[IpAddr],
) -> Result<String, String> {
    edit_cluster(text, |cluster| {
        let hosts = hosts_of(cluster)?;
        for (ips, role) in [(masters, "master"), (nodes, "node")] {
            if !ips.is_empty() {
                hosts.push(host_group(ips, role));
            }
        }
        Ok(())
    })
}

/// The recorded Clusterfile without `removed` (groups left empty are dropped).
pub fn with_hosts_removed(text: &str, removed: &[IpAddr]) -> Result<String, String> {
    edit_cluster(text, |cluster| {
        let hosts = hosts_of(cluster)?;
        for group in hosts.iter_mut() {
            if let Some(Value::Array(ips)) = group.get_mut("ips") {
                ips.retain(|ip| {
                    ip.as_str()
                        .and_then(|ip| ip.parse::<IpAddr>().ok())
                        .is_none_or(|ip| !removed.contains(&ip))
                });
            }
        }
        hosts.retain(|group| {
            group
                .get("ips")
                .and_then(Value::as_array)
                .is_none_or(|ips| !ips.is_empty())
        });
        Ok(())
    })
}

/// Most addresses one `a-b` range of the command line may expand to.
const MAX_RANGE: u128 = 1024;

/// The addresses of a command-line list: comma-separated IPs and `first-last` ranges of one
/// family (`10.0.0.2-10.0.0.4`), in order, each once.
pub fn parse_ip_list(text: &str) -> Result<Vec<IpAddr>, String> {
    let mut addresses: Vec<IpAddr> = Vec::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let parse = |text: &str| {
            text.trim().parse::<IpAddr>().map_err(|_| {
                format!(
                    "{text:?} is not an IP address (give IPs or first-last ranges, comma-separated)"
                )
            })
        };
        let (start, end) = match part.split_once('-') {
            Some((start, end)) => (parse(start)?, parse(end)?),
            None => (parse(part)?, parse(part)?),
        };
        let number = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        let (first, last) = (number(start), number(end));
        if start.is_ipv4() != end.is_ipv4() || first > last {
            return Err(format!(
                "{part:?} is not a range: write first-last, first <= last, one IP family"
            ));
        }
        if last - first >= MAX_RANGE {
            return Err(format!("{part:?} has more than {MAX_RANGE} addresses"));
        }
        for value in first..=last {
            let ip = if start.is_ipv4() {
                IpAddr::from(std::net::Ipv4Addr::from(
                    u32::try_from(value).unwrap_or(u32::MAX),
                ))
            } else {
                IpAddr::from(std::net::Ipv6Addr::from(value))
            };
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
    }
    Ok(addresses)
}

fn host_group(ips: &[IpAddr], role: &str) -> Value {
    json!({
        "ips": ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "roles": [role],
    })
}

fn hosts_of(cluster: &mut Value) -> Result<&mut Vec<Value>, String> {
    let spec = cluster
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or("the Cluster document has no spec")?;
    let hosts = spec.entry("hosts").or_insert_with(|| json!([]));
    hosts
        .as_array_mut()
        .ok_or_else(|| "spec.hosts of the Cluster document is not a list".to_owned())
}

/// Rewrites the Cluster document of `text` with `change`, keeping the other documents' text.
fn edit_cluster(
    text: &str,
    change: impl FnOnce(&mut Value) -> Result<(), String>,
) -> Result<String, String> {
    let documents = split_documents(text);
    let mut output = Vec::new();
    let mut change = Some(change);
    for document in documents {
        let value = kyaml::from_yaml(&document).map_err(|e| e.to_string())?;
        let json_text = kyaml::to_json(&value)?;
        let mut json: Value = serde_json::from_str(&json_text).map_err(|e| e.to_string())?;
        let is_cluster = json.get("kind").and_then(Value::as_str) == Some("Cluster");
        match change.take_if(|_| is_cluster) {
            Some(change) => {
                change(&mut json)?;
                output.push(emit(&json)?);
            }
            None => output.push(document),
        }
    }
    if change.is_some() {
        return Err("the Clusterfile has no Cluster document".to_owned());
    }
    Ok(output
        .iter()
        .map(|document| document.trim_end_matches('\n'))
        .collect::<Vec<_>>()
        .join("\n---\n")
        + "\n")
}

/// The documents of a YAML stream as text, split at `---` lines; empty ones dropped.
fn split_documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            documents.push(String::new());
            continue;
        }
        if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
        .into_iter()
        .filter(|document| {
            document
                .lines()
                .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        })
        .collect()
}

/// YAML text of a JSON value, as `kubectl` would write it.
fn emit(value: &Value) -> Result<String, String> {
    let value = kyaml::from_json(&value.to_string())?;
    kyaml::to_yaml(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTERFILE: &str = "\
# the cluster
apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: c1
spec:
  image: example:1
  hosts:
  - ips: [10.0.0.2]
    roles: [master]
  - ips: [10.0.0.3, 10.0.0.4]
    roles: [node]
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: p   # kept as written
spec:
  type: SHELL
  action: post-install
  data: echo hi
";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn hosts_are_added_in_groups_of_their_role_and_other_documents_keep_their_text() {
        let text = with_hosts_added(CLUSTERFILE, &[], &[ip("10.0.0.5")]).unwrap();
        assert!(
            text.contains("- ips:\n    - 10.0.0.5\n    roles:\n    - node"),
            "{text}"
        );
        assert!(text.contains("name: p   # kept as written"), "{text}");
        let again = kyaml::from_yaml(text.split("\n---\n").next().unwrap()).unwrap();
        assert!(kyaml::to_json(&again).unwrap().contains("10.0.0.4"));
    }

    #[test]
    fn removed_hosts_leave_and_empty_groups_go() {
        let text = with_hosts_removed(CLUSTERFILE, &[ip("10.0.0.3"), ip("10.0.0.4")]).unwrap();
        assert!(
            !text.contains("10.0.0.3") && !text.contains("10.0.0.4"),
            "{text}"
        );
        assert!(!text.contains("- node"), "{text}");
        assert!(text.contains("10.0.0.2"));
    }

    #[test]
    fn flags_give_a_cluster_document() {
        let text = from_flags(&ClusterFlags {
            name: "c".to_owned(),
            image: "img:1".to_owned(),
            masters: vec![ip("10.0.0.2")],
            nodes: vec![ip("10.0.0.3")],
            env: vec!["A=b".to_owned()],
            user: "root".to_owned(),
            password: None,
            port: 22,
            key: Some(PathBuf::from("/k")),
            key_passphrase: None,
        });
        assert!(text.contains("kind: Cluster"), "{text}");
        assert!(text.contains("port: \"22\""), "{text}");
        assert!(text.contains("pk: /k"), "{text}");
    }

    #[test]
    fn ip_lists_take_commas_and_ranges() {
        assert_eq!(
            parse_ip_list("10.0.0.2, 10.0.0.4-10.0.0.5,10.0.0.2").unwrap(),
            vec![ip("10.0.0.2"), ip("10.0.0.4"), ip("10.0.0.5")]
        );
        assert!(
            parse_ip_list("10.0.0.5-10.0.0.4")
                .unwrap_err()
                .contains("not a range")
        );
        assert!(
            parse_ip_list("10.0.0.1-::1")
                .unwrap_err()
                .contains("one IP family")
        );
        assert!(
            parse_ip_list("host")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(
            parse_ip_list("10.0.0.0-10.0.255.255")
                .unwrap_err()
                .contains("more than")
        );
    }

    #[test]
    fn a_clusterfile_without_cluster_is_an_error() {
        let error = with_hosts_added("kind: Plugin\n", &[ip("10.0.0.9")], &[]).unwrap_err();
        assert!(error.contains("no Cluster document"));
    }
}
