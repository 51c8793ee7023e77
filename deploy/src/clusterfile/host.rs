//! A cluster host: its IP, roles, SSH settings, env, labels and taints.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kyaml::Node;

use super::document::{Location, Reader, child};
use super::validate::{check_label_key, check_label_value};
use crate::secret::Secret;

/// The role that makes a host a control-plane node.
pub const MASTER_ROLE: &str = "master";

/// One host of the cluster (host groups of the Clusterfile are flattened, one per IP).
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    /// The address sealer reaches the host at, and its node IP.
    pub ip: IpAddr,
    /// Its roles (`master`, `node`, custom), as written.
    pub roles: Vec<String>,
    /// SSH settings: the host group's, over the cluster's, over the defaults.
    pub ssh: SshSpec,
    /// The user env for this host: the cluster's `spec.env` overlaid by the host group's
    /// `env` (reserved keys removed; see [`Cluster::host_env`](super::Cluster::host_env)).
    pub env: BTreeMap<String, String>,
    /// Node labels to set.
    pub labels: BTreeMap<String, String>,
    /// Node taints to set or remove.
    pub taints: Vec<Taint>,
    /// Where the IP is written in the Clusterfile.
    pub location: Location,
}

impl Host {
    /// Whether the host has the `master` role.
    pub fn is_master(&self) -> bool {
        self.has_role(MASTER_ROLE)
    }

    /// Whether the host has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|own| own == role)
    }

    /// The labels a label selector sees on this host: its `labels`, plus
    /// `node-role.kubernetes.io/<role>=""` for each role (as sealer labels the node).
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        for role in &self.roles {
            labels
                .entry(format!("node-role.kubernetes.io/{role}"))
                .or_default();
        }
        labels
    }
}

/// How to log in to a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSpec {
    /// Login user (default `root`; others use sudo).
    pub user: String,
    /// Password, when password authentication is wanted.
    pub password: Option<Secret>,
    /// Private key file as written (`~/` is the user's home: see [`SshSpec::key_path`]);
    /// `~/.ssh/id_rsa` when neither a password nor a key is given.
    pub key: Option<PathBuf>,
    /// Passphrase of the private key.
    pub key_passphrase: Option<Secret>,
    /// SSH port (default 22).
    pub port: u16,
}

impl SshSpec {
    /// The private key's path with a leading `~/` replaced by `home`.
    pub fn key_path(&self, home: &Path) -> Option<PathBuf> {
        let key = self.key.as_ref()?;
        Some(match key.strip_prefix("~") {
            Ok(rest) => home.join(rest),
            Err(_) => key.clone(),
        })
    }

    /// `user@ip:port`, the way messages name a host.
    pub fn target(&self, ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(_) => format!("{}@{ip}:{}", self.user, self.port),
            IpAddr::V6(_) => format!("{}@[{ip}]:{}", self.user, self.port),
        }
    }
}

/// SSH fields as one `ssh:` block gives them (each may be absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PartialSsh {
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub key: Option<PathBuf>,
    pub key_passphrase: Option<Secret>,
    pub port: Option<u16>,
}

impl PartialSsh {
    /// Reads an `ssh:` block (`user`, `passwd`, `pk`, `pkPasswd`, `port`, `encrypted`).
    pub fn read(reader: &mut Reader<'_>, node: Option<&Node>, path: &str) -> PartialSsh {
        let Some(node) = node else {
            return PartialSsh::default();
        };
        reader.mapping(Some(node), path);
        reader.check_keys(
            node,
            path,
            &["user", "passwd", "pk", "pkPasswd", "port", "encrypted"],
        );
        if reader.boolean(node.get("encrypted"), &child(path, "encrypted")) == Some(true) {
            reader.problem(
                node.get("encrypted").unwrap_or(node),
                &child(path, "encrypted"),
                "encrypted passwords are not supported: write the password itself, or use a key (pk)",
            );
        }
        PartialSsh {
            user: reader.string(node.get("user"), &child(path, "user")),
            password: reader
                .string(node.get("passwd"), &child(path, "passwd"))
                .map(Secret::new),
            key: reader
                .string(node.get("pk"), &child(path, "pk"))
                .map(PathBuf::from),
            key_passphrase: reader
                .string(node.get("pkPasswd"), &child(path, "pkPasswd"))
                .map(Secret::new),
            port: reader.port(node.get("port"), &child(path, "port")),
        }
    }

    /// These fields over `base`'s, then the defaults.
    pub fn resolve(&self, base: &PartialSsh) -> SshSpec {
        let password = self.password.clone().or_else(|| base.password.clone());
        let mut key = self.key.clone().or_else(|| base.key.clone());
        if password.is_none() && key.is_none() {
            key = Some(PathBuf::from("~/.ssh/id_rsa"));
        }
        SshSpec {
            user: self
                .user
                .clone()
                .or_else(|| base.user.clone())
                .unwrap_or_else(|| "root".to_owned()),
            password,
            key,
            key_passphrase: self
                .key_passphrase
                .clone()
                .or_else(|| base.key_passphrase.clone()),
            port: self.port.or(base.port).unwrap_or(22),
        }
    }
}

/// A taint effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaintEffect {
    /// `NoSchedule`.
    NoSchedule,
    /// `PreferNoSchedule`.
    PreferNoSchedule,
    /// `NoExecute`.
    NoExecute,
}

impl TaintEffect {
    /// The effect's name as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }

    fn parse(text: &str) -> Option<TaintEffect> {
        [
            TaintEffect::NoSchedule,
            TaintEffect::PreferNoSchedule,
            TaintEffect::NoExecute,
        ]
        .into_iter()
        .find(|effect| effect.as_str() == text)
    }
}

/// A taint to add (`key=value:Effect`, `key:Effect`) or remove (`key:Effect-`, `key-`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taint {
    /// The taint key (a label key).
    pub key: String,
    /// The value (possibly empty).
    pub value: String,
    /// The effect; `None` only for a removal of every effect (`key-`).
    pub effect: Option<TaintEffect>,
    /// Whether the taint is removed rather than added.
    pub remove: bool,
}

impl Taint {
    /// Parses the Clusterfile's taint syntax.
    pub fn parse(text: &str) -> Result<Taint, String> {
        let trimmed = text.trim();
        let (body, remove) = match trimmed.strip_suffix('-') {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        let (pair, effect) = match body.rsplit_once(':') {
            Some((pair, effect)) => {
                let parsed = TaintEffect::parse(effect).ok_or_else(|| {
                    format!(
                        "{text:?}: effect {effect:?} is not one of NoSchedule, \
                         PreferNoSchedule, NoExecute"
                    )
                })?;
                (pair, Some(parsed))
            }
            None => (body, None),
        };
        if effect.is_none() && !remove {
            return Err(format!(
                "{text:?} has no effect: write key=value:Effect, key:Effect, or key- to remove"
            ));
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        check_label_key(key).map_err(|message| format!("{text:?}: taint key {message}"))?;
        check_label_value(value).map_err(|message| format!("{text:?}: taint value {message}"))?;
        Ok(Taint {
            key: key.to_owned(),
            value: value.to_owned(),
            effect,
            remove,
        })
    }
}

impl fmt::Display for Taint {
    /// The argument `kubectl taint node <name>` takes.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.key)?;
        if !self.value.is_empty() {
            write!(formatter, "={}", self.value)?;
        }
        if let Some(effect) = self.effect {
            write!(formatter, ":{}", effect.as_str())?;
        }
        if self.remove {
            formatter.write_str("-")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_and_print() {
        for (text, printed, remove) in [
            ("key1=value1:NoSchedule", "key1=value1:NoSchedule", false),
            ("key1:NoExecute", "key1:NoExecute", false),
            ("key1=:PreferNoSchedule", "key1:PreferNoSchedule", false),
            (
                "dedicated-gpu=true:NoSchedule-",
                "dedicated-gpu=true:NoSchedule-",
                true,
            ),
            (
                "node-role.kubernetes.io/master:NoSchedule-",
                "node-role.kubernetes.io/master:NoSchedule-",
                true,
            ),
            ("key1-", "key1-", true),
        ] {
            let taint = Taint::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(taint.to_string(), printed);
            assert_eq!(taint.remove, remove);
        }
        let taint = Taint::parse("a=b:NoSchedule").expect("valid");
        assert_eq!(
            (taint.key.as_str(), taint.value.as_str(), taint.effect),
            ("a", "b", Some(TaintEffect::NoSchedule))
        );
    }

    #[test]
    fn bad_taints_say_why() {
        for (text, message) in [
            (
                "key1=value1",
                "\"key1=value1\" has no effect: write key=value:Effect, key:Effect, or key- to remove",
            ),
            (
                "key1:Sometimes",
                "\"key1:Sometimes\": effect \"Sometimes\" is not one of NoSchedule, PreferNoSchedule, NoExecute",
            ),
            (
                "=v:NoSchedule",
                "\"=v:NoSchedule\": taint key \"\" is not a label key: the name part must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            ),
            (
                "k=a b:NoSchedule",
                "\"k=a b:NoSchedule\": taint value \"a b\" is not a label value: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            ),
        ] {
            assert_eq!(Taint::parse(text).unwrap_err(), message);
        }
    }

    #[test]
    fn ssh_merge_and_defaults() {
        let cluster = PartialSsh {
            user: Some("ops".to_owned()),
            password: Some(Secret::new("cluster".to_owned())),
            port: Some(2222),
            ..PartialSsh::default()
        };
        let host = PartialSsh {
            password: Some(Secret::new("host".to_owned())),
            ..PartialSsh::default()
        };
        let merged = host.resolve(&cluster);
        assert_eq!(merged.user, "ops");
        assert_eq!(merged.password.as_ref().map(Secret::expose), Some("host"));
        assert_eq!(merged.port, 2222);
        assert_eq!(merged.key, None);

        let defaults = PartialSsh::default().resolve(&PartialSsh::default());
        assert_eq!(defaults.user, "root");
        assert_eq!(defaults.port, 22);
        assert_eq!(defaults.key, Some(PathBuf::from("~/.ssh/id_rsa")));
        assert_eq!(
            defaults.key_path(Path::new("/home/me")),
            Some(PathBuf::from("/home/me/.ssh/id_rsa"))
        );
        assert_eq!(
            defaults.target("10.0.0.1".parse().expect("ip")),
            "root@10.0.0.1:22"
        );
        assert_eq!(
            defaults.target("fd00::1".parse().expect("ip")),
            "root@[fd00::1]:22"
        );
    }
}
