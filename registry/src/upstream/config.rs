//! The `proxy` section of the registry configuration file: which upstream registries the
//! pull-through cache reaches, with what credentials and TLS settings. The format is
//! described in the [module documentation](super).

use std::path::{Path, PathBuf};
use std::time::Duration;

use kyaml::{Node, NodeKind};
use reqwest::Url;

/// How long a request to an upstream may go without any progress (no connection, no
/// response, no body bytes) before it fails, unless the upstream sets its own `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `proxy` section, validated: every file it names was read.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// The configured upstreams (`upstreams`, then `remoteregistries`), in file order.
    pub upstreams: Vec<UpstreamConfig>,
    /// `on: true`: an `ns` naming a registry that is not configured is fetched from
    /// `https://<ns>` anonymously.
    pub dynamic: bool,
}

/// One upstream registry.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// What `ns=` selects (lower case; `index.docker.io` and `registry-1.docker.io` are
    /// written `docker.io`).
    pub name: String,
    /// Where its distribution API is (`/v2/` is appended), without credentials or path.
    pub url: Url,
    /// Basic credentials, also sent to the token service of a Bearer challenge.
    pub credentials: Option<Credentials>,
    /// Repository prefixes mapped to this upstream, each ending in `/`, besides the
    /// default `<name>/`.
    pub prefixes: Vec<String>,
    /// The `ca_file` that was read into [`UpstreamConfig::ca_pem`].
    pub ca_file: Option<PathBuf>,
    /// Extra trusted roots (PEM), besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept any server certificate (`insecure_skip_verify: true`).
    pub insecure_skip_verify: bool,
    /// How long a request may go without progress.
    pub timeout: Duration,
    /// Where the entry is written, for messages (`file:line:column`).
    pub location: String,
    /// 1-based line of the entry.
    pub line: usize,
    /// 1-based column of the entry.
    pub column: usize,
}

/// A user name and password; the password never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    password: String,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The password, for the `Authorization` header only.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A mistake in the `proxy` section, with its place in the file and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// The registry Docker Hub images are named with, and what `ns=` says for them.
const DOCKER_HUB: &str = image::reference::DEFAULT_REGISTRY;
/// Other names of Docker Hub that select the same upstream.
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];

/// The name an `ns` value or upstream name is compared by: lower case, Docker Hub's
/// aliases as `docker.io`.
pub(super) fn canonical_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&lower.as_str()) {
        DOCKER_HUB.to_owned()
    } else {
        lower
    }
}

/// True for `host`, `host:port` and `[v6]:port`: what an `ns` value or a registry domain
/// looks like.
pub(super) fn is_host(text: &str) -> bool {
    if text.is_empty() || text.len() > 255 {
        return false;
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => (host, Some(port)),
        _ => (text, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The URL an upstream without `url` (or a dynamic one) is reached at: `https://<name>`,
/// Docker Hub's API host for `docker.io`.
pub(super) fn default_url(name: &str) -> Option<Url> {
    let host = if name == DOCKER_HUB {
        image::reference::DEFAULT_REGISTRY_API_HOST
    } else {
        name
    };
    Url::parse(&format!("https://{host}")).ok()
}

const UPSTREAM_KEYS: [&str; 9] = [
    "name",
    "url",
    "username",
    "password",
    "password_file",
    "prefixes",
    "ca_file",
    "insecure_skip_verify",
    "timeout",
];
const PROXY_KEYS: [&str; 3] = ["upstreams", "remoteregistries", "on"];

impl ProxyConfig {
    /// Reads the `proxy` section (the node under the `proxy` key) of the configuration file
    /// `file`. Relative `password_file` and `ca_file` paths are resolved against the file's
    /// directory, and both files are read now, so a mistake shows at start-up.
    pub fn from_node(proxy: &Node, file: &Path) -> Result<ProxyConfig, ConfigError> {
        let reader = Reader { file };
        let mut config = ProxyConfig::default();
        if matches!(proxy.kind, NodeKind::Null) {
            return Ok(config);
        }
        let pairs = reader.mapping(proxy, "proxy")?;
        for (key, value) in pairs {
            match key_text(key) {
                "upstreams" => {
                    for (index, entry) in reader
                        .sequence(value, "proxy.upstreams")?
                        .iter()
                        .enumerate()
                    {
                        let path = format!("proxy.upstreams[{index}]");
                        let upstream = reader.upstream(entry, &path, false, &config.upstreams)?;
                        config.upstreams.push(upstream);
                    }
                }
                "remoteregistries" => {
                    for (index, entry) in reader
                        .sequence(value, "proxy.remoteregistries")?
                        .iter()
                        .enumerate()
                    {
                        let path = format!("proxy.remoteregistries[{index}]");
                        let upstream = reader.upstream(entry, &path, true, &config.upstreams)?;
                        config.upstreams.push(upstream);
                    }
                }
                "on" => config.dynamic = reader.boolean(value, "proxy.on")?,
                "remoteurl" => {
                    return Err(reader.error(
                        key,
                        "`proxy.remoteurl` (the stock registry's single upstream) is not read here: \
                         write it as an entry of `proxy.upstreams` with `name:` and `url:`",
                    ));
                }
                other => return Err(reader.unknown_key(key, other, "proxy", &PROXY_KEYS)),
            }
        }
        Ok(config)
    }

    /// True when no upstream is configured and no dynamic upstream allowed: the registry
    /// serves its storage only.
    pub fn is_empty(&self) -> bool {
        self.upstreams.is_empty() && !self.dynamic
    }
}

/// A mapping key's text: a string's, or a bool's as written (`on` is a bool in YAML 1.1).
fn key_text(key: &Node) -> &str {
    key.scalar_text().unwrap_or("")
}

struct Reader<'a> {
    file: &'a Path,
}

/// The fields of one upstream entry as written, before defaults and checks.
#[derive(Default)]
struct Fields<'n> {
    name: Option<(&'n Node, String)>,
    url: Option<(&'n Node, String)>,
    username: Option<(&'n Node, String)>,
    password: Option<(&'n Node, String)>,
    password_file: Option<(&'n Node, String)>,
    prefixes: Vec<(&'n Node, String)>,
    ca_file: Option<(&'n Node, String)>,
    insecure_skip_verify: bool,
    timeout: Option<Duration>,
}

impl Reader<'_> {
    fn error(&self, node: &Node, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: node.line,
            column: node.column,
            message: message.into(),
        }
    }

    fn location(&self, node: &Node) -> String {
        format!("{}:{}:{}", self.file.display(), node.line, node.column)
    }

    fn unknown_key(&self, key: &Node, name: &str, section: &str, known: &[&str]) -> ConfigError {
        self.error(
            key,
            format!(
                "unknown key `{name}` in {section}: write one of {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    }

    fn mapping<'n>(&self, node: &'n Node, path: &str) -> Result<&'n [(Node, Node)], ConfigError> {
        match &node.kind {
            NodeKind::Mapping(pairs) => Ok(pairs),
            _ => Err(self.error(
                node,
                format!(
                    "{path} must be a mapping (`key: value` lines), found {}",
                    node.describe()
                ),
            )),
        }
    }

    fn sequence<'n>(&self, node: &'n Node, path: &str) -> Result<&'n [Node], ConfigError> {
        match &node.kind {
            NodeKind::Sequence(items) => Ok(items),
            NodeKind::Null => Ok(&[]),
            _ => Err(self.error(
                node,
                format!(
                    "{path} must be a list (`- ...` lines), found {}",
                    node.describe()
                ),
            )),
        }
    }

    fn string(
        &self,
        node: &Node,
        path: &str,
        example: &str,
    ) -> Result<Option<String>, ConfigError> {
        match &node.kind {
            NodeKind::Null => Ok(None),
            NodeKind::String(text) => Ok(Some(text.clone())),
            // A password or user name written as a bare number or `yes` is still text.
            NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::Float(_) => {
                Ok(node.scalar_text().map(str::to_owned))
            }
            NodeKind::Sequence(_) | NodeKind::Mapping(_) => Err(self.error(
                node,
                format!(
                    "{path} must be a string such as `{example}`, found {}",
                    node.describe()
                ),
            )),
        }
    }

    fn boolean(&self, node: &Node, path: &str) -> Result<bool, ConfigError> {
        match node.kind {
            NodeKind::Bool(value) => Ok(value),
            NodeKind::Null => Ok(false),
            _ => Err(self.error(
                node,
                format!(
                    "{path} must be `true` or `false`, found {}",
                    node.describe()
                ),
            )),
        }
    }

    fn upstream(
        &self,
        entry: &Node,
        path: &str,
        remote_registry: bool,
        earlier: &[UpstreamConfig],
    ) -> Result<UpstreamConfig, ConfigError> {
        let mut fields = Fields::default();
        for (key, value) in self.mapping(entry, path)? {
            let name = key_text(key);
            let field = format!("{path}.{name}");
            let text = |example: &str| -> Result<Option<(&Node, String)>, ConfigError> {
                Ok(self.string(value, &field, example)?.map(|t| (value, t)))
            };
            match name {
                "name" => fields.name = text("quay.io")?,
                "url" => fields.url = text("https://quay.io")?,
                "username" => fields.username = text("robot")?,
                "password" => fields.password = text("secret")?,
                "password_file" => fields.password_file = text("/etc/registry/quay.password")?,
                "ca_file" => fields.ca_file = text("/etc/registry/quay-ca.pem")?,
                "insecure_skip_verify" => {
                    fields.insecure_skip_verify = self.boolean(value, &field)?;
                }
                "timeout" => fields.timeout = Some(self.duration(value, &field)?),
                "prefixes" => {
                    for item in self.sequence(value, &field)? {
                        let prefix = self
                            .string(item, &format!("{field}[]"), "quay.io/")?
                            .ok_or_else(|| {
                                self.error(item, format!("{field}: an empty prefix; write a repository prefix such as `quay.io/`"))
                            })?;
                        fields.prefixes.push((item, prefix));
                    }
                }
                _ => return Err(self.unknown_key(key, name, path, &UPSTREAM_KEYS)),
            }
        }
        self.build(entry, path, remote_registry, fields, earlier)
    }

    fn build(
        &self,
        entry: &Node,
        path: &str,
        remote_registry: bool,
        fields: Fields<'_>,
        earlier: &[UpstreamConfig],
    ) -> Result<UpstreamConfig, ConfigError> {
        let url = match &fields.url {
            Some((node, text)) => Some(self.url(node, text, path)?),
            None => None,
        };
        let name = match (&fields.name, &url) {
            (Some((node, name)), _) => {
                let canonical = canonical_name(name.trim());
                if canonical.is_empty()
                    || !canonical
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
                {
                    return Err(self.error(
                        node,
                        format!(
                            "{path}.name `{name}`: a name is a registry host such as `quay.io` or \
                             `registry.example.com:5000` (letters, digits, `.`, `-`, `_`, `:`)"
                        ),
                    ));
                }
                canonical
            }
            (None, Some(url)) => canonical_name(&host_port(url)),
            (None, None) => {
                let what = if remote_registry {
                    "`url: https://quay.io`"
                } else {
                    "`name: quay.io` (and `url:` when it is not https://<name>)"
                };
                return Err(self.error(entry, format!("{path} has no {what}")));
            }
        };
        if let Some(first) = earlier.iter().find(|u| u.name == name) {
            let node = fields
                .name
                .as_ref()
                .or(fields.url.as_ref())
                .map_or(entry, |(node, _)| node);
            return Err(self.error(
                node,
                format!(
                    "{path}: a second upstream named `{name}` (the first is at {}): give each upstream its own `name`",
                    first.location
                ),
            ));
        }
        let url = match url {
            Some(url) => url,
            None => default_url(&name).ok_or_else(|| {
                self.error(
                    entry,
                    format!("{path}: `{name}` is not a host name, so it needs `url: https://...`"),
                )
            })?,
        };
        let base = self.file.parent().unwrap_or(Path::new("."));
        let password = match (fields.password, fields.password_file) {
            (Some((node, _)), Some(_)) => {
                return Err(self.error(
                    node,
                    format!("{path} has both `password` and `password_file`: keep `password_file` (no secret in this file)"),
                ));
            }
            (Some((node, password)), None) => Some((node, password)),
            (None, Some((node, file))) => {
                let file = base.join(file);
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    self.error(
                        node,
                        format!("{path}.password_file: cannot read {}: {e}", file.display()),
                    )
                })?;
                Some((node, text.trim_end_matches(['\r', '\n']).to_owned()))
            }
            (None, None) => None,
        };
        let credentials = match (fields.username, password) {
            (Some((_, username)), Some((_, password))) => {
                Some(Credentials::new(username, password))
            }
            (None, None) => None,
            (Some((node, _)), None) => {
                return Err(self.error(
                    node,
                    format!("{path} has `username` but no `password_file` (or `password`)"),
                ));
            }
            (None, Some((node, _))) => {
                return Err(self.error(node, format!("{path} has a password but no `username`")));
            }
        };
        let (ca_file, ca_pem) = match fields.ca_file {
            Some((node, file)) => {
                let file = base.join(file);
                let pem = std::fs::read(&file).map_err(|e| {
                    self.error(
                        node,
                        format!("{path}.ca_file: cannot read {}: {e}", file.display()),
                    )
                })?;
                match reqwest::Certificate::from_pem_bundle(&pem) {
                    Ok(certificates) if !certificates.is_empty() => {}
                    _ => {
                        return Err(self.error(
                            node,
                            format!(
                                "{path}.ca_file: {} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                                file.display()
                            ),
                        ));
                    }
                }
                (Some(file), Some(pem))
            }
            None => (None, None),
        };
        let mut prefixes: Vec<String> = Vec::new();
        for (node, written) in fields.prefixes {
            let prefix = self.prefix(node, &written, path)?;
            if let Some(first) = earlier.iter().find(|u| u.prefixes.contains(&prefix)) {
                return Err(self.error(
                    node,
                    format!(
                        "{path}.prefixes: `{prefix}` is already mapped to `{}` (at {}): map a prefix to one upstream",
                        first.name, first.location
                    ),
                ));
            }
            if prefixes.contains(&prefix) {
                return Err(self.error(
                    node,
                    format!("{path}.prefixes: `{prefix}` is listed twice: list it once"),
                ));
            }
            prefixes.push(prefix);
        }
        Ok(UpstreamConfig {
            name,
            url,
            credentials,
            prefixes,
            ca_file,
            ca_pem,
            insecure_skip_verify: fields.insecure_skip_verify,
            timeout: fields.timeout.unwrap_or(DEFAULT_TIMEOUT),
            location: self.location(entry),
            line: entry.line,
            column: entry.column,
        })
    }

    fn url(&self, node: &Node, text: &str, path: &str) -> Result<Url, ConfigError> {
        let fail = |why: &str| {
            self.error(
                node,
                format!("{path}.url `{text}`: {why}; write the registry's address such as `https://quay.io` or `http://127.0.0.1:5000`"),
            )
        };
        let url = Url::parse(text).map_err(|e| fail(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail("only http and https are supported"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(fail("it names no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(self.error(
                node,
                format!("{path}.url holds credentials: put them in `username` and `password_file` instead"),
            ));
        }
        if url.path() != "/" && !url.path().is_empty() {
            return Err(fail("a registry URL has no path (the API is at /v2/)"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(fail("a registry URL has no query or fragment"));
        }
        Ok(url)
    }

    fn prefix(&self, node: &Node, prefix: &str, path: &str) -> Result<String, ConfigError> {
        let trimmed = prefix.trim_matches('/');
        let valid = !trimmed.is_empty()
            && trimmed.split('/').all(|component| {
                !component.is_empty()
                    && component != "."
                    && component != ".."
                    && component
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
            });
        if !valid {
            return Err(self.error(
                node,
                format!("{path}.prefixes: `{prefix}` is not a repository prefix; write one such as `quay.io/` or `library/`"),
            ));
        }
        Ok(format!("{}/", trimmed.to_ascii_lowercase()))
    }

    fn duration(&self, node: &Node, path: &str) -> Result<Duration, ConfigError> {
        let text = node.scalar_text().unwrap_or("");
        parse_duration(text)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                self.error(
                    node,
                    format!("{path}: `{text}` is not a duration; write one with a unit, such as `30s`, `2m` or `1m30s`"),
                )
            })
    }
}

/// The `host[:port]` of a URL, as a registry is named.
pub(super) fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// A Go duration (`30s`, `1m30s`, `1.5h`, `500ms`): numbers each followed by a unit.
fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in(dir: &Path, yaml: &str) -> Result<ProxyConfig, ConfigError> {
        let documents = kyaml::parse_documents(yaml, &kyaml::Limits::default()).unwrap();
        let root = &documents[0].root;
        ProxyConfig::from_node(root.get("proxy").unwrap(), &dir.join("config.yml"))
    }

    fn parse(yaml: &str) -> Result<ProxyConfig, ConfigError> {
        parse_in(Path::new("/etc/registry"), yaml)
    }

    fn error(yaml: &str) -> ConfigError {
        parse(yaml).expect_err("the configuration should be refused")
    }

    #[test]
    fn full_example() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("robot.password"), "s3cret\n").unwrap();
        let config = parse_in(
            dir.path(),
            "proxy:
  upstreams:
    - name: docker.io
      prefixes: [docker.io/, library]
    - name: Registry.Example.com:5000
      url: http://127.0.0.1:5000
      username: robot
      password_file: robot.password
      insecure_skip_verify: true
      timeout: 1m30s
  remoteregistries:
    - url: https://quay.io
      username: u
      password: 1234
  on: true
",
        )
        .unwrap();
        assert!(config.dynamic);
        let names: Vec<_> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["docker.io", "registry.example.com:5000", "quay.io"]);
        let hub = &config.upstreams[0];
        assert_eq!(hub.url.as_str(), "https://registry-1.docker.io/");
        assert_eq!(hub.prefixes, ["docker.io/", "library/"]);
        assert_eq!(hub.timeout, DEFAULT_TIMEOUT);
        assert_eq!((hub.line, hub.column), (3, 7));
        let private = &config.upstreams[1];
        assert_eq!(private.url.as_str(), "http://127.0.0.1:5000/");
        assert_eq!(
            private.credentials,
            Some(Credentials::new("robot", "s3cret"))
        );
        assert!(private.insecure_skip_verify);
        assert_eq!(private.timeout, Duration::from_secs(90));
        let quay = &config.upstreams[2];
        assert_eq!(quay.credentials, Some(Credentials::new("u", "1234")));
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "Debug hides passwords"
        );
    }

    #[test]
    fn empty_sections() {
        assert!(parse("proxy:\n").unwrap().is_empty());
        assert!(parse("proxy:\n  upstreams:\n").unwrap().is_empty());
        assert!(!parse("proxy:\n  on: yes\n").unwrap().is_empty());
    }

    #[test]
    fn remote_registries_of_docker_hub_are_named_docker_io() {
        let config =
            parse("proxy:\n  remoteregistries:\n    - url: https://index.docker.io\n").unwrap();
        assert_eq!(config.upstreams[0].name, "docker.io");
        assert_eq!(config.upstreams[0].url.as_str(), "https://index.docker.io/");
    }

    #[test]
    fn errors_name_the_place_and_the_fix() {
        let e = error("proxy:\n  upstreams:\n    - name: quay.io\n      user: x\n");
        assert_eq!((e.line, e.column), (4, 7));
        assert!(
            e.message.contains("unknown key `user`") && e.message.contains("`username`"),
            "{e}"
        );
        assert!(
            e.to_string().starts_with("/etc/registry/config.yml:4:7: "),
            "{e}"
        );

        let e = error("proxy:\n  upstreams:\n    - name: quay.io\n      url: ftp://quay.io\n");
        assert_eq!((e.line, e.column), (4, 12));
        assert!(e.message.contains("only http and https"), "{e}");

        let e = error("proxy:\n  upstreams:\n    - url: https://user:pw@quay.io\n");
        assert!(e.message.contains("password_file"), "{e}");
        assert!(!e.message.contains("pw@"), "{e}");

        let e = error("proxy:\n  upstreams:\n    - url: https://quay.io/v2/\n");
        assert!(e.message.contains("no path"), "{e}");

        let e = error("proxy:\n  remoteregistries:\n    - username: u\n");
        assert!(e.message.contains("`url: https://quay.io`"), "{e}");

        let e = error("proxy:\n  upstreams: quay.io\n");
        assert_eq!((e.line, e.column), (2, 14));
        assert!(e.message.contains("must be a list"), "{e}");

        let e = error("proxy:\n  remoteurl: https://registry-1.docker.io\n");
        assert!(e.message.contains("proxy.upstreams"), "{e}");

        let e = error("proxy:\n  on: maybe\n");
        assert!(e.message.contains("`true` or `false`"), "{e}");
    }

    #[test]
    fn duplicates_are_refused() {
        let e = error(
            "proxy:\n  upstreams:\n    - name: quay.io\n  remoteregistries:\n    - url: https://QUAY.io\n",
        );
        assert_eq!((e.line, e.column), (5, 12));
        assert!(
            e.message.contains("second upstream named `quay.io`") && e.message.contains(":3:7"),
            "{e}"
        );

        let e = error(
            "proxy:\n  upstreams:\n    - name: a.io\n      prefixes: [x/]\n    - name: b.io\n      prefixes: [y/, x]\n",
        );
        assert_eq!((e.line, e.column), (6, 22));
        assert!(
            e.message.contains("`x/` is already mapped to `a.io`"),
            "{e}"
        );

        let e = error("proxy:\n  upstreams:\n    - name: a.io\n      prefixes: [x/, x]\n");
        assert!(e.message.contains("listed twice"), "{e}");
    }

    #[test]
    fn credentials_must_be_complete_and_files_readable() {
        let e = error("proxy:\n  upstreams:\n    - name: a.io\n      username: u\n");
        assert!(e.message.contains("no `password_file`"), "{e}");
        let e = error("proxy:\n  upstreams:\n    - name: a.io\n      password: p\n");
        assert!(e.message.contains("no `username`"), "{e}");
        let e = error(
            "proxy:\n  upstreams:\n    - name: a.io\n      username: u\n      password: p\n      password_file: f\n",
        );
        assert!(e.message.contains("both"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let e = parse_in(
            dir.path(),
            "proxy:\n  upstreams:\n    - name: a.io\n      username: u\n      password_file: missing.txt\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (5, 22));
        assert!(
            e.message.contains("cannot read") && e.message.contains("missing.txt"),
            "{e}"
        );

        std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
        let e = parse_in(
            dir.path(),
            "proxy:\n  upstreams:\n    - name: a.io\n      ca_file: ca.pem\n",
        )
        .unwrap_err();
        assert!(e.message.contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn names_and_prefixes_are_checked() {
        let e = error("proxy:\n  upstreams:\n    - name: a b\n");
        assert!(e.message.contains("registry host"), "{e}");
        let e = error("proxy:\n  upstreams:\n    - name: a.io\n      prefixes: [../x]\n");
        assert!(e.message.contains("not a repository prefix"), "{e}");
        let e = error("proxy:\n  upstreams:\n    - name: a.io\n      timeout: 30\n");
        assert!(e.message.contains("such as `30s`"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("5 minutes"), None);
    }

    #[test]
    fn hosts() {
        for host in [
            "quay.io",
            "localhost",
            "127.0.0.1:5000",
            "[::1]:5000",
            "a-b.c_d.io",
        ] {
            assert!(is_host(host), "{host}");
        }
        for text in [
            "",
            "a/b",
            "quay.io:",
            "quay.io:x",
            "-a.io",
            "a..io",
            "user@host",
            "[zz]",
        ] {
            assert!(!is_host(text), "{text}");
        }
        assert_eq!(canonical_name("Index.Docker.IO"), "docker.io");
    }
}
