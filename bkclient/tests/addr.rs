//! `Address::parse`: every supported form, the environment fallbacks and the errors.

use std::collections::HashMap;
use std::path::PathBuf;

use bkclient::addr::{Address, DockerHost, TlsFiles};

/// `(value, environment, expected)`.
type Case = (
    Option<&'static str>,
    Vec<(&'static str, &'static str)>,
    Address,
);
/// `(value, environment, text the error must contain)`.
type ErrorCase = (
    Option<&'static str>,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

fn parse_with(
    value: Option<&str>,
    tls: TlsFiles,
    vars: &[(&str, &str)],
) -> Result<Address, String> {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    Address::parse(value, tls, &|key| env.get(key).cloned()).map_err(|error| error.to_string())
}

fn parse(value: Option<&str>, vars: &[(&str, &str)]) -> Result<Address, String> {
    parse_with(value, TlsFiles::default(), vars)
}

fn default_docker() -> Address {
    Address::Docker(DockerHost::Unix(PathBuf::from("/var/run/docker.sock")))
}

#[test]
fn supported_forms_parse() {
    let table: Vec<Case> = vec![
        (Some("docker"), vec![], default_docker()),
        (Some("docker://"), vec![], default_docker()),
        (Some(" docker "), vec![], default_docker()),
        (
            Some("docker"),
            vec![("DOCKER_HOST", "unix:///tmp/d.sock")],
            Address::Docker(DockerHost::Unix(PathBuf::from("/tmp/d.sock"))),
        ),
        (
            Some("docker"),
            vec![("DOCKER_HOST", "tcp://10.0.0.2:2375")],
            Address::Docker(DockerHost::Tcp {
                host: "10.0.0.2".to_owned(),
                port: 2375,
                tls: None,
            }),
        ),
        (
            Some("docker"),
            vec![("DOCKER_HOST", "tcp://docker.example")],
            Address::Docker(DockerHost::Tcp {
                host: "docker.example".to_owned(),
                port: 2375,
                tls: None,
            }),
        ),
        (
            Some("docker://unix:///run/other.sock"),
            vec![("DOCKER_HOST", "tcp://ignored:1")],
            Address::Docker(DockerHost::Unix(PathBuf::from("/run/other.sock"))),
        ),
        (
            Some("docker://tcp://h:2375"),
            vec![],
            Address::Docker(DockerHost::Tcp {
                host: "h".to_owned(),
                port: 2375,
                tls: None,
            }),
        ),
        (
            Some("unix:///run/buildkit/buildkitd.sock"),
            vec![],
            Address::Unix(PathBuf::from("/run/buildkit/buildkitd.sock")),
        ),
        (
            Some("tcp://buildkit.local:1234"),
            vec![],
            Address::Tcp {
                host: "buildkit.local".to_owned(),
                port: 1234,
                tls: None,
            },
        ),
        (
            Some("tcp://[::1]:1234/"),
            vec![],
            Address::Tcp {
                host: "::1".to_owned(),
                port: 1234,
                tls: None,
            },
        ),
        // Without a value: BUILDKIT_HOST, else docker.
        (
            None,
            vec![("BUILDKIT_HOST", "unix:///run/bk.sock")],
            Address::Unix(PathBuf::from("/run/bk.sock")),
        ),
        (None, vec![], default_docker()),
        (None, vec![("BUILDKIT_HOST", "")], default_docker()),
        // An explicit value wins over BUILDKIT_HOST.
        (
            Some("docker"),
            vec![("BUILDKIT_HOST", "tcp://h:1")],
            default_docker(),
        ),
    ];
    for (value, vars, expected) in table {
        assert_eq!(
            parse(value, &vars),
            Ok(expected),
            "value {value:?} with {vars:?}"
        );
    }
}

#[test]
fn docker_tls_comes_from_the_environment() {
    let address = parse(
        Some("docker"),
        &[
            ("DOCKER_HOST", "tcp://remote:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/certs"),
        ],
    )
    .unwrap();
    let expected = TlsFiles {
        ca: Some(PathBuf::from("/certs/ca.pem")),
        cert: Some(PathBuf::from("/certs/cert.pem")),
        key: Some(PathBuf::from("/certs/key.pem")),
        server_name: None,
    };
    assert_eq!(
        address,
        Address::Docker(DockerHost::Tcp {
            host: "remote".to_owned(),
            port: 2376,
            tls: Some(expected),
        })
    );
    assert_eq!(address.to_string(), "docker (tcp://remote:2376 (TLS))");

    let address = parse(
        Some("docker"),
        &[
            ("DOCKER_HOST", "tcp://remote"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("HOME", "/home/me"),
        ],
    )
    .unwrap();
    let Address::Docker(DockerHost::Tcp {
        port,
        tls: Some(tls),
        ..
    }) = address
    else {
        panic!("expected a TLS docker host, got {address:?}");
    };
    assert_eq!(port, 2376);
    assert_eq!(tls.ca, Some(PathBuf::from("/home/me/.docker/ca.pem")));
}

#[test]
fn tls_options_apply_to_tcp_buildkitd_only() {
    let tls = TlsFiles {
        ca: Some(PathBuf::from("/ca.pem")),
        server_name: Some("buildkit".to_owned()),
        ..TlsFiles::default()
    };
    assert_eq!(
        parse_with(Some("tcp://h:1234"), tls.clone(), &[]),
        Ok(Address::Tcp {
            host: "h".to_owned(),
            port: 1234,
            tls: Some(tls.clone()),
        })
    );
    for value in ["docker", "unix:///run/bk.sock"] {
        let error = parse_with(Some(value), tls.clone(), &[]).unwrap_err();
        assert!(error.contains("apply only to tcp://"), "{value}: {error}");
    }
}

#[test]
fn unsupported_addresses_say_what_is_supported() {
    let cases: Vec<ErrorCase> = vec![
        (
            Some("ssh://me@host"),
            vec![],
            "ssh:// addresses are not supported",
        ),
        (
            Some("docker-container://buildkitd"),
            vec![],
            "unknown scheme `docker-container://`",
        ),
        (
            Some("kube-pod://bk"),
            vec![],
            "unknown scheme `kube-pod://`",
        ),
        (Some("/run/buildkit.sock"), vec![], "not an address"),
        (Some("unix://"), vec![], "needs a socket path"),
        (Some("unix://relative.sock"), vec![], "not absolute"),
        (Some("tcp://host"), vec![], "the port is missing"),
        (Some("tcp://:1234"), vec![], "the host is missing"),
        (Some("tcp://host:99999"), vec![], "is not a TCP port"),
        (Some("tcp://host:1/path"), vec![], "takes no path"),
        (
            Some("docker://ssh://me@host"),
            vec![],
            "over ssh:// are not supported",
        ),
        (
            Some("docker://npipe:////./pipe/docker"),
            vec![],
            "unknown scheme `npipe://`",
        ),
        (
            Some("docker"),
            vec![("DOCKER_HOST", "ssh://me@host")],
            "DOCKER_HOST=ssh://me@host",
        ),
        (
            None,
            vec![("BUILDKIT_HOST", "podman://x")],
            "unknown scheme `podman://`",
        ),
    ];
    for (value, vars, expected) in cases {
        let error = parse(value, &vars).unwrap_err();
        assert!(
            error.contains(expected),
            "{value:?}: `{error}` lacks `{expected}`"
        );
        let names_the_scheme = expected.contains("scheme")
            || expected.contains("ssh://")
            || expected == "not an address";
        if names_the_scheme {
            assert!(
                error.contains("supported are") || error.contains("a Docker host must be"),
                "{value:?}: {error}"
            );
        }
    }
}

#[test]
fn addresses_display_for_error_messages() {
    assert_eq!(
        default_docker().to_string(),
        "docker (unix:///var/run/docker.sock)"
    );
    assert_eq!(
        Address::Unix(PathBuf::from("/run/buildkit/buildkitd.sock")).to_string(),
        "unix:///run/buildkit/buildkitd.sock"
    );
    let tcp = Address::Tcp {
        host: "::1".to_owned(),
        port: 1234,
        tls: Some(TlsFiles::default()),
    };
    assert_eq!(tcp.to_string(), "tcp://[::1]:1234 (TLS)");
}
