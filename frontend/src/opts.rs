//! The options BuildKit passes a gateway frontend: one `BUILDKIT_FRONTEND_OPT_<i>=key=value`
//! environment variable per option (`docker build` flags such as `--build-arg`, `--label`,
//! `-f`, `--platform`, `--network`), plus the client's session id in `BUILDKIT_SESSION_ID`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::IpAddr;

use kubefile::plan::{Platform, parse_build_arg};
use llb::source::ResolveMode;

use crate::scan_inputs::{SCAN_OPTION, ScanInputs};

/// The build file read when no `filename` option is given.
pub const DEFAULT_FILENAME: &str = "Kubefile";

/// The prefix of the environment variables carrying options.
pub const OPTION_VARIABLE_PREFIX: &str = "BUILDKIT_FRONTEND_OPT_";

/// The environment variable carrying the client's session id.
pub const SESSION_VARIABLE: &str = "BUILDKIT_SESSION_ID";

/// The network RUN steps get unless they ask for one (`force-network-mode`, from
/// `docker build --network`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// Each step gets its own network namespace (BuildKit's default).
    #[default]
    Sandbox,
    /// The host's network (`--network host`).
    Host,
    /// No network at all (`--network none`).
    None,
}

/// An extra `/etc/hosts` entry for RUN steps (`docker build --add-host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    /// The host name (lower case).
    pub host: String,
    /// Its address.
    pub ip: IpAddr,
}

/// The frontend's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendOptions {
    /// The build file's path in the `dockerfile` local (`filename`; `docker build -f` sends
    /// the base name). Defaults to [`DEFAULT_FILENAME`].
    pub filename: String,
    /// `build-arg:NAME` values.
    pub build_args: BTreeMap<String, String>,
    /// `label:NAME` values, to add to the image config.
    pub labels: BTreeMap<String, String>,
    /// The target platform (`platform`); `None` means the worker's platform.
    pub platform: Option<Platform>,
    /// The stage to build (`target`); Kubefiles have a single stage.
    pub target: Option<String>,
    /// Ignore the build cache (`no-cache`, present or naming stages: a Kubefile's one stage
    /// is always meant).
    pub no_cache: bool,
    /// How base images are resolved (`image-resolve-mode`: `default`, `pull`, `local`).
    pub image_resolve_mode: ResolveMode,
    /// The default network of RUN steps (`force-network-mode`).
    pub network: NetworkMode,
    /// Extra hosts for RUN steps (`add-hosts`, `host=ip` pairs separated by commas).
    pub add_hosts: Vec<ExtraHost>,
    /// The frontend's own image reference (`source`, set when started through `# syntax`).
    pub source: Option<String>,
    /// The client session that serves the local directories (`BUILDKIT_SESSION_ID`).
    pub session_id: String,
    /// The name of the local holding the build context (`contextkey`, default `context`).
    pub context_local: String,
    /// The name of the local holding the build file (`dockerfilekey`, default `dockerfile`).
    pub build_file_local: String,
    /// Values and image lists for the image scan ([`SCAN_OPTION`]), sent by `sealer-build
    /// build --buildkit`.
    pub scan_inputs: Option<ScanInputs>,
}

impl Default for FrontendOptions {
    fn default() -> Self {
        FrontendOptions {
            filename: DEFAULT_FILENAME.to_owned(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            platform: None,
            target: None,
            no_cache: false,
            image_resolve_mode: ResolveMode::Default,
            network: NetworkMode::Sandbox,
            add_hosts: Vec::new(),
            source: None,
            session_id: String::new(),
            context_local: "context".to_owned(),
            build_file_local: "dockerfile".to_owned(),
            scan_inputs: None,
        }
    }
}

/// An option BuildKit passed that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The variable's value is not `key=value`.
    #[error("frontend option `{entry}` is not key=value")]
    Malformed {
        /// The variable (or pair) as given.
        entry: String,
    },
    /// The value of a known option is invalid.
    #[error("invalid frontend option `{key}={value}`: {reason}")]
    Invalid {
        /// The option key.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl FrontendOptions {
    /// The options in this process's environment.
    pub fn from_env() -> Result<Self, OptionsError> {
        let mut variables = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(OPTION_VARIABLE_PREFIX) || name == SESSION_VARIABLE {
                let value =
                    value
                        .into_string()
                        .map_err(|value: OsString| OptionsError::Malformed {
                            entry: format!("{name}={}", value.to_string_lossy()),
                        })?;
                variables.push((name.to_owned(), value));
            }
        }
        FrontendOptions::from_variables(variables)
    }

    /// The options in these environment variables (others are ignored).
    pub fn from_variables<I>(variables: I) -> Result<Self, OptionsError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut pairs = BTreeMap::new();
        let mut session_id = String::new();
        for (name, value) in variables {
            if name == SESSION_VARIABLE {
                session_id = value;
            } else if name.starts_with(OPTION_VARIABLE_PREFIX) {
                let Some((key, option)) = value.split_once('=') else {
                    return Err(OptionsError::Malformed {
                        entry: format!("{name}={value}"),
                    });
                };
                pairs.insert(key.to_owned(), option.to_owned());
            }
        }
        let mut options = FrontendOptions::from_map(&pairs)?;
        options.session_id = session_id;
        Ok(options)
    }

    /// The options given as `key=value` pairs (as `buildctl --opt` writes them).
    pub fn from_pairs<'a, I>(pairs: I) -> Result<Self, OptionsError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(OptionsError::Malformed {
                    entry: pair.to_owned(),
                });
            };
            map.insert(key.to_owned(), value.to_owned());
        }
        FrontendOptions::from_map(&map)
    }

    /// Whether RUN steps use the host network by default (`docker build --network host`).
    pub fn forces_host_network(&self) -> bool {
        self.network == NetworkMode::Host
    }

    fn from_map(pairs: &BTreeMap<String, String>) -> Result<Self, OptionsError> {
        let mut options = FrontendOptions::default();
        if let Some(name) = pairs.get("contextkey") {
            options.context_local.clone_from(name);
        }
        if let Some(name) = pairs.get("dockerfilekey") {
            options.build_file_local.clone_from(name);
        }
        for (key, value) in pairs {
            let invalid = |reason: String| OptionsError::Invalid {
                key: key.clone(),
                value: value.clone(),
                reason,
            };
            if let Some(name) = key.strip_prefix("build-arg:") {
                parse_build_arg(&format!("{name}={value}"), &|_| None).map_err(invalid)?;
                options.build_args.insert(name.to_owned(), value.clone());
            } else if let Some(name) = key.strip_prefix("label:") {
                if name.is_empty() {
                    return Err(invalid("a label needs a name: label:NAME=value".to_owned()));
                }
                options.labels.insert(name.to_owned(), value.clone());
            } else if *key == options.context_local {
                if !value.is_empty() {
                    return Err(invalid(
                        "remote build contexts (Git repositories, URLs) are not supported; build from a local directory".to_owned(),
                    ));
                }
            } else {
                match key.as_str() {
                    "filename" if !value.is_empty() => options.filename.clone_from(value),
                    "platform" => options.platform = parse_platform(value).map_err(invalid)?,
                    "target" => options.target = non_empty(value),
                    "no-cache" => options.no_cache = true,
                    "image-resolve-mode" => {
                        options.image_resolve_mode = parse_resolve_mode(value).map_err(invalid)?;
                    }
                    "force-network-mode" => {
                        options.network = parse_network_mode(value).map_err(invalid)?;
                    }
                    "add-hosts" => options.add_hosts = parse_extra_hosts(value).map_err(invalid)?,
                    "source" => options.source = non_empty(value),
                    SCAN_OPTION if !value.is_empty() => {
                        options.scan_inputs = Some(ScanInputs::parse(value).map_err(invalid)?);
                    }
                    // `cache-from`, `cmdline`, `multi-platform` and the like: nothing to do.
                    _ => {}
                }
            }
        }
        Ok(options)
    }
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn parse_platform(value: &str) -> Result<Option<Platform>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.contains(',') {
        return Err(
            "a Kubefile build makes one platform at a time; run one build per platform".to_owned(),
        );
    }
    value.parse().map(Some)
}

fn parse_resolve_mode(value: &str) -> Result<ResolveMode, String> {
    match value {
        "" | "default" => Ok(ResolveMode::Default),
        "pull" => Ok(ResolveMode::ForcePull),
        "local" => Ok(ResolveMode::PreferLocal),
        _ => Err("expected default, pull or local".to_owned()),
    }
}

fn parse_network_mode(value: &str) -> Result<NetworkMode, String> {
    match value {
        "" | "sandbox" => Ok(NetworkMode::Sandbox),
        "host" => Ok(NetworkMode::Host),
        "none" => Ok(NetworkMode::None),
        _ => Err("expected sandbox, host or none".to_owned()),
    }
}

/// `host=ip` pairs, comma separated; a field may be double-quoted (CSV, as BuildKit reads it).
fn parse_extra_hosts(value: &str) -> Result<Vec<ExtraHost>, String> {
    let mut hosts = Vec::new();
    for field in csv_fields(value)? {
        let Some((host, ip)) = field.split_once('=') else {
            return Err(format!("`{field}` is not host=ip"));
        };
        let ip = ip.to_ascii_lowercase();
        let ip = ip
            .parse()
            .map_err(|_| format!("`{ip}` (for {host}) is not an IP address"))?;
        hosts.push(ExtraHost {
            host: host.to_ascii_lowercase(),
            ip,
        });
    }
    Ok(hosts)
}

/// The fields of one CSV record; empty input has none.
fn csv_fields(record: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    if record.is_empty() {
        return Ok(fields);
    }
    let mut chars = record.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(other) => field.push(other),
                    None => return Err("a quoted field is not closed".to_owned()),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("unexpected text after a quoted field".to_owned());
            }
        } else {
            while let Some(&next) = chars.peek() {
                if next == ',' {
                    break;
                }
                field.push(next);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn reads_what_docker_build_sends() {
        let options = FrontendOptions::from_variables(variables(&[
            ("BUILDKIT_FRONTEND_OPT_0", "build-arg:FOO=bar=baz"),
            ("BUILDKIT_FRONTEND_OPT_1", "label:lab=1"),
            ("BUILDKIT_FRONTEND_OPT_2", "filename=Kubefile.prod"),
            ("BUILDKIT_FRONTEND_OPT_3", "add-hosts="),
            ("BUILDKIT_FRONTEND_OPT_4", "image-resolve-mode=pull"),
            ("BUILDKIT_FRONTEND_OPT_5", "cache-from="),
            (
                "BUILDKIT_FRONTEND_OPT_6",
                "source=127.0.0.1:5000/sealer-frontend:test",
            ),
            (
                "BUILDKIT_FRONTEND_OPT_7",
                "cmdline=127.0.0.1:5000/sealer-frontend:test",
            ),
            ("BUILDKIT_FRONTEND_OPT_8", "force-network-mode=host"),
            ("BUILDKIT_FRONTEND_OPT_9", "target=tgt"),
            ("BUILDKIT_SESSION_ID", "ses29158"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        assert_eq!(options.build_args["FOO"], "bar=baz");
        assert_eq!(options.labels["lab"], "1");
        assert_eq!(options.filename, "Kubefile.prod");
        assert!(options.add_hosts.is_empty());
        assert_eq!(options.image_resolve_mode, ResolveMode::ForcePull);
        assert_eq!(
            options.source.as_deref(),
            Some("127.0.0.1:5000/sealer-frontend:test")
        );
        assert!(options.forces_host_network());
        assert_eq!(options.target.as_deref(), Some("tgt"));
        assert_eq!(options.session_id, "ses29158");
        assert!(!options.no_cache);
        assert_eq!(options.platform, None);
        assert_eq!(options.context_local, "context");
        assert_eq!(options.build_file_local, "dockerfile");
    }

    #[test]
    fn defaults_when_nothing_is_given() {
        let options = FrontendOptions::from_variables(Vec::new()).unwrap();
        assert_eq!(options, FrontendOptions::default());
        assert_eq!(options.filename, "Kubefile");
        assert_eq!(options.network, NetworkMode::Sandbox);
        assert_eq!(options.session_id, "");
        let empty_name = FrontendOptions::from_pairs(["filename="]).unwrap();
        assert_eq!(empty_name.filename, "Kubefile");
    }

    #[test]
    fn plain_pairs_cover_every_known_option() {
        let options = FrontendOptions::from_pairs([
            "platform=linux/aarch64",
            "no-cache=",
            "image-resolve-mode=local",
            "force-network-mode=none",
            "add-hosts=Registry.Local=127.0.0.1,\"v6=::1\"",
            "contextkey=ctx",
            "dockerfilekey=df",
            "ctx=",
            "multi-platform=true",
        ])
        .unwrap();
        assert_eq!(
            options.platform.as_ref().unwrap().to_string(),
            "linux/arm64"
        );
        assert!(options.no_cache);
        assert_eq!(options.image_resolve_mode, ResolveMode::PreferLocal);
        assert_eq!(options.network, NetworkMode::None);
        assert!(!options.forces_host_network());
        assert_eq!(
            options.add_hosts,
            vec![
                ExtraHost {
                    host: "registry.local".to_owned(),
                    ip: "127.0.0.1".parse().unwrap()
                },
                ExtraHost {
                    host: "v6".to_owned(),
                    ip: "::1".parse().unwrap()
                },
            ]
        );
        assert_eq!(options.context_local, "ctx");
        assert_eq!(options.build_file_local, "df");
        let stages = FrontendOptions::from_pairs(["no-cache=build,final"]).unwrap();
        assert!(stages.no_cache);
    }

    #[test]
    fn later_duplicates_win_and_unknown_options_are_ignored() {
        let options =
            FrontendOptions::from_pairs(["build-arg:A=1", "build-arg:A=2", "hostname=x", "=y"])
                .unwrap();
        assert_eq!(options.build_args["A"], "2");
    }

    #[test]
    fn malformed_entries_are_errors() {
        let missing_equals =
            FrontendOptions::from_variables(variables(&[("BUILDKIT_FRONTEND_OPT_3", "no-cache")]))
                .unwrap_err();
        assert_eq!(
            missing_equals.to_string(),
            "frontend option `BUILDKIT_FRONTEND_OPT_3=no-cache` is not key=value"
        );
        assert!(matches!(
            FrontendOptions::from_pairs(["target"]),
            Err(OptionsError::Malformed { .. })
        ));
    }

    #[test]
    fn invalid_values_name_the_option() {
        let cases = [
            (
                "image-resolve-mode=sometimes",
                "expected default, pull or local",
            ),
            (
                "force-network-mode=bridge",
                "expected sandbox, host or none",
            ),
            ("platform=linux", "not a platform"),
            ("platform=linux/amd64,linux/arm64", "one platform at a time"),
            ("add-hosts=nohost", "is not host=ip"),
            ("add-hosts=a=not-an-ip", "is not an IP address"),
            ("add-hosts=\"a=1.2.3.4", "not closed"),
            ("build-arg:=x", "invalid --build-arg"),
            ("build-arg:A B=x", "not a valid argument name"),
            ("label:=x", "needs a name"),
            (
                "context=https://github.com/x/y.git",
                "remote build contexts",
            ),
        ];
        for (pair, expected) in cases {
            let error = FrontendOptions::from_pairs([pair]).unwrap_err();
            let text = error.to_string();
            assert!(text.contains(expected), "{pair}: {text}");
            let (key, _) = pair.split_once('=').unwrap();
            assert!(text.contains(&format!("`{key}=")), "{pair}: {text}");
        }
    }

    #[test]
    fn scan_inputs_are_parsed_and_bad_json_names_the_option() {
        let options = FrontendOptions::from_pairs([
            r#"sealer.scan={"local":"sealer-inputs","values":[{"chart":"nginx","path":"values/0000.yaml"}],"set":["nginx.image.tag=1"],"image_lists":["lists/0000.txt"]}"#,
        ])
        .unwrap();
        let inputs = options.scan_inputs.unwrap();
        assert_eq!(inputs.local, "sealer-inputs");
        assert_eq!(inputs.paths(), ["values/0000.yaml", "lists/0000.txt"]);
        assert_eq!(inputs.set, ["nginx.image.tag=1"]);
        assert!(inputs.set_string.is_empty());
        assert_eq!(
            FrontendOptions::from_pairs(["sealer.scan="])
                .unwrap()
                .scan_inputs,
            None
        );

        let error = FrontendOptions::from_pairs([r#"sealer.scan={"local":"#]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(
                r#"invalid frontend option `sealer.scan={"local":`: not valid scan inputs JSON: "#
            ),
            "{text}"
        );
        let outside = FrontendOptions::from_pairs([
            r#"sealer.scan={"local":"sealer-inputs","image_lists":["../../etc/passwd"]}"#,
        ])
        .unwrap_err();
        assert!(matches!(&outside, OptionsError::Invalid { key, .. } if key == "sealer.scan"));
        assert!(
            outside.to_string().contains("must stay inside the local"),
            "{outside}"
        );
    }

    #[test]
    fn csv_fields_follow_go_csv() {
        assert_eq!(csv_fields("").unwrap(), Vec::<String>::new());
        assert_eq!(csv_fields("a,b").unwrap(), ["a", "b"]);
        assert_eq!(csv_fields("\"a,\"\"b\",c,").unwrap(), ["a,\"b", "c", ""]);
        assert!(csv_fields("\"a\"b").is_err());
    }
}
