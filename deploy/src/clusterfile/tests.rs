//! Tests of the whole module: realistic Clusterfiles, every validation message with its
//! position, env, Config writing, plugins and launch commands.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::*;

fn parse(text: &str) -> Result<Clusterfile, ClusterfileError> {
    Clusterfile::parse(text, Path::new("Clusterfile"))
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(error) => error.to_string().lines().map(str::to_owned).collect(),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP")
}

const FULL: &str = r#"apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: prod
spec:
  image: docker.io/sealerio/kubernetes:v1.22.15
  env:
    - PodCIDR=100.64.0.0/10
    - SvcCIDR=10.96.0.0/22
    - Greeting=a=b
    - RegistryURL=evil:1
  cmd: []
  appNames: [calico, ""]
  ssh:
    user: ops
    passwd: cluster-secret
    port: "2222"
  hosts:
    - ips: [ 192.168.0.2, 192.168.0.3 ]
      roles: [ master ]
      ssh:
        port: 22
        pk: /keys/master
      env: [ Zone=a, HostIP=10.9.9.9 ]
      taints: [ "node-role.kubernetes.io/master:NoSchedule-" ]
    - ips: [ 192.168.0.4 ]
      roles: [ node, gpu ]
      labels:
        accelerator: nvidia
      taints: [ "gpu=true:NoSchedule" ]
  containerRuntime:
    type: containerd
  hostAliases:
    - ip: 192.168.0.9
      hostnames: [ mirror.local ]
  registry:
    localRegistry:
      domain: hub.local
      ha: false
      username: admin
      password: registry-secret
      cert:
        subjectAltName:
          dnsNames: [ hub.example.com ]
          ips: [ 192.168.0.9 ]
  dataRoot: /data/sealer
---
apiVersion: sealer.io/v1
kind: Config
metadata:
  name: values
spec:
  path: etc/values.yaml
  strategy: merge
  data: |
    replicas: 3
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: zz-disk
spec:
  type: SHELL
  action: pre-init-host | post-clean-host
  scope: node
  data: |
    mkfs.ext4 /dev/vdb
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: aa-check
spec:
  type: SHELL
  action: pre-install
  data: kubectl version
---
apiVersion: sealer.io/v2
kind: Application
metadata:
  name: apps
spec:
  launchApps: [ calico ]
  configs:
    - name: calico
      env: [ Mode=vxlan ]
      launch:
        cmds: [ "kubectl apply -f application/apps/calico/" ]
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
networking:
  podSubnet: 100.64.0.0/10
---
apiVersion: example.com/v1
kind: Mystery
"#;

#[test]
fn full_clusterfile_model() {
    let file = parse(FULL).unwrap_or_else(|error| panic!("{error}"));
    let cluster = &file.cluster;
    assert_eq!(cluster.name, "prod");
    assert_eq!(cluster.image, "docker.io/sealerio/kubernetes:v1.22.15");
    assert_eq!(
        cluster.rootfs_dir(),
        PathBuf::from("/data/sealer/prod/rootfs")
    );
    assert_eq!(
        cluster.app_names,
        Some(vec!["calico".to_owned(), String::new()])
    );
    assert_eq!(
        cluster
            .env
            .iter()
            .map(|(key, _)| key.as_str())
            .collect::<Vec<_>>(),
        ["PodCIDR", "SvcCIDR", "Greeting"]
    );
    assert_eq!(cluster.hosts.len(), 3);
    assert_eq!(cluster.master0().ip, ip("192.168.0.2"));
    assert_eq!(cluster.masters().count(), 2);
    assert_eq!(
        cluster.workers().map(|host| host.ip).collect::<Vec<_>>(),
        [ip("192.168.0.4")]
    );

    let master = cluster.host(ip("192.168.0.3")).expect("a master");
    assert_eq!(master.ssh.user, "ops");
    assert_eq!(master.ssh.port, 22);
    assert_eq!(master.ssh.key, Some(PathBuf::from("/keys/master")));
    assert_eq!(
        master
            .ssh
            .password
            .as_ref()
            .map(crate::secret::Secret::expose),
        Some("cluster-secret")
    );
    assert_eq!(master.location.line, 19);
    assert_eq!(
        master.taints[0].to_string(),
        "node-role.kubernetes.io/master:NoSchedule-"
    );
    let worker = cluster.host(ip("192.168.0.4")).expect("a worker");
    assert_eq!(worker.ssh.port, 2222);
    assert_eq!(
        worker.ssh.key, None,
        "a password and no key: no default key"
    );
    assert_eq!(
        worker.labels.get("accelerator").map(String::as_str),
        Some("nvidia")
    );
    assert!(
        worker
            .selector_labels()
            .contains_key("node-role.kubernetes.io/gpu")
    );

    assert_eq!(cluster.container_runtime.as_deref(), Some("containerd"));
    assert_eq!(cluster.host_aliases[0].hostnames, ["mirror.local"]);
    let local = cluster.registry.local.as_ref().expect("a local registry");
    assert_eq!(local.endpoint.url(), "hub.local:5000");
    assert!(!local.ha);
    assert!(!local.insecure);
    assert_eq!(local.cert_dns_names, ["hub.example.com"]);
    assert_eq!(local.cert_ips, [ip("192.168.0.9")]);

    assert_eq!(file.configs.len(), 1);
    assert_eq!(file.configs[0].strategy, Strategy::Merge);
    assert_eq!(file.hooks.len(), 2);
    assert_eq!(
        file.hooks[0].phases,
        [Phase::PreInitHost, Phase::PostCleanHost]
    );
    assert_eq!(
        file.hooks[0].selector,
        HostSelector::Roles(vec!["node".to_owned()])
    );
    assert_eq!(file.hooks[0].script, "mkfs.ext4 /dev/vdb");
    assert_eq!(file.hooks[0].source.to_string(), "Clusterfile:58:1");
    assert_eq!(file.hooks[1].selector, HostSelector::All);
    let application = file.application.as_ref().expect("an Application");
    assert_eq!(
        application
            .config("calico")
            .map(|config| config.env.clone()),
        Some(vec![("Mode".to_owned(), "vxlan".to_owned())])
    );
    assert_eq!(file.kubeadm.len(), 1);
    assert_eq!(file.kubeadm[0].kind, "ClusterConfiguration");
    assert_eq!(
        file.kubeadm[0]
            .root
            .get_path(&["networking", "podSubnet"])
            .and_then(kyaml::Node::as_str),
        Some("100.64.0.0/10")
    );

    let warnings: Vec<String> = file.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "Clusterfile:11:7: document 1 (Cluster): spec.env[3]: RegistryURL is computed by sealer: this value is ignored",
            "Clusterfile:95:1: document 7 (Mystery): kind: kind \"Mystery\" is not one sealer reads: ignored",
        ]
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let file = parse(FULL).expect("valid");
    let debug = format!("{file:?}");
    assert!(!debug.contains("cluster-secret"));
    assert!(!debug.contains("registry-secret"));
    assert!(debug.contains("***"));
}

#[test]
fn round_trip_keeps_the_text() {
    let file = parse(FULL).expect("valid");
    assert_eq!(file.to_yaml(), FULL);
    assert_eq!(parse(file.to_yaml()).expect("valid again"), file);
}

#[test]
fn cluster_and_host_env() {
    let file = parse(FULL).expect("valid");
    let image_env = vec![
        ("FromImage".to_owned(), "yes".to_owned()),
        ("PodCIDR".to_owned(), "10.0.0.0/8".to_owned()),
        ("ContainerRuntime".to_owned(), "docker".to_owned()),
    ];
    let env = file.cluster.cluster_env(&image_env).expect("env");
    let get = |key: &str| env.get(key).map(String::as_str);
    assert_eq!(get("FromImage"), Some("yes"));
    assert_eq!(
        get("PodCIDR"),
        Some("100.64.0.0/10"),
        "the Clusterfile wins over the image"
    );
    assert_eq!(get("ContainerRuntime"), Some("containerd"));
    assert_eq!(get("Greeting"), Some("a=b"));
    assert_eq!(get("LocalRegistryDomain"), Some("hub.local"));
    assert_eq!(get("LocalRegistryPort"), Some("5000"));
    assert_eq!(get("LocalRegistryURL"), Some("hub.local:5000"));
    assert_eq!(get("RegistryURL"), Some("hub.local:5000"));
    assert_eq!(get("KubeSvcIP"), Some("10.96.0.1"));
    assert_eq!(get("DNSSvcIP"), Some("10.96.0.10"));
    assert_eq!(get("HostIPFamily"), None);
    assert_eq!(get("HostIP"), None);
    assert_eq!(get("ExternalRegistryURL"), None);

    let master = file
        .cluster
        .host_env(ip("192.168.0.2"), &image_env)
        .expect("env")
        .expect("a host");
    assert_eq!(master.get("Zone").map(String::as_str), Some("a"));
    assert_eq!(
        master.get("HostIP").map(String::as_str),
        Some("10.9.9.9"),
        "a host group may set HostIP"
    );
    let worker = file
        .cluster
        .host_env(ip("192.168.0.4"), &[])
        .expect("env")
        .expect("a host");
    assert_eq!(
        worker.get("HostIP").map(String::as_str),
        Some("192.168.0.4")
    );
    assert_eq!(worker.get("Zone"), None);
    assert!(
        file.cluster
            .host_env(ip("10.1.1.1"), &[])
            .expect("env")
            .is_none()
    );

    let bad_image = vec![("SvcCIDR".to_owned(), "nonsense".to_owned())];
    let text = "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: i\n  hosts: [{ips: [10.0.0.1], roles: [master]}]\n";
    let plain = parse(text).expect("valid");
    assert_eq!(
        plain
            .cluster
            .cluster_env(&bad_image)
            .expect_err("bad SvcCIDR")
            .to_string(),
        "the image's env SvcCIDR=\"nonsense\": not a CIDR (e.g. 10.96.0.0/16)"
    );
}

#[test]
fn default_registry_external_registry_and_ipv6() {
    let text = "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: i\n  hosts: [{ips: ['fd00::1'], roles: [master]}, {ips: ['fd00::2'], roles: [node]}]\n";
    let cluster = parse(text).expect("valid").cluster;
    let local = cluster
        .registry
        .local
        .as_ref()
        .expect("the default registry");
    assert_eq!(
        (local.endpoint.url().as_str(), local.ha, local.insecure),
        ("sea.hub:5000", true, false)
    );
    assert_eq!(cluster.data_root, PathBuf::from("/var/lib/sealer/data"));
    let env = cluster.cluster_env(&[]).expect("env");
    assert_eq!(env.get("HostIPFamily").map(String::as_str), Some("IPv6"));
    assert_eq!(
        env.get("RegistryURL").map(String::as_str),
        Some("sea.hub:5000")
    );
    assert_eq!(
        cluster.master0().ssh.key,
        Some(PathBuf::from("~/.ssh/id_rsa"))
    );

    let text = "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: i\n  hosts: [{ips: [10.0.0.1], roles: [master]}]\n  registry:\n    externalRegistry: {domain: harbor.example.com, username: u, password: p}\n";
    let cluster = parse(text).expect("valid").cluster;
    assert!(cluster.registry.local.is_none());
    let env = cluster.cluster_env(&[]).expect("env");
    assert_eq!(
        env.get("RegistryURL").map(String::as_str),
        Some("harbor.example.com")
    );
    assert_eq!(env.get("RegistryPort").map(String::as_str), Some(""));
    assert_eq!(
        env.get("ExternalRegistryDomain").map(String::as_str),
        Some("harbor.example.com")
    );
    assert_eq!(env.get("LocalRegistryURL"), None);
}

#[test]
fn older_cluster_layout_maps_to_host_groups() {
    let text = r"apiVersion: sealer.aliyun.com/v1alpha1
kind: Cluster
metadata:
  name: my-cluster
spec:
  image: kubernetes:v1.19.8
  provider: BAREMETAL
  ssh:
    passwd: xxx
    user: root
  network:
    podCIDR: 100.64.0.0/10
    svcCIDR: 10.96.0.0/22
  certSANS:
    - aliyun-inc.com
    - 10.0.0.2
  masters:
    cpu: 4
    ipList:
      - 172.22.82.184
  nodes:
    ipList: [172.22.82.185, 172.22.82.186]
";
    let file = parse(text).unwrap_or_else(|error| panic!("{error}"));
    let cluster = &file.cluster;
    assert_eq!(cluster.master0().ip, ip("172.22.82.184"));
    assert_eq!(cluster.workers().count(), 2);
    assert!(cluster.workers().all(|host| host.roles == ["node"]));
    assert_eq!(
        cluster.env,
        [
            ("PodCIDR".to_owned(), "100.64.0.0/10".to_owned()),
            ("SvcCIDR".to_owned(), "10.96.0.0/22".to_owned()),
            ("CertSANs".to_owned(), "aliyun-inc.com,10.0.0.2".to_owned()),
        ]
    );
    assert!(file.warnings.is_empty(), "{:?}", file.warnings);
}

const BASE: &str =
    "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  image: i\n";

#[test]
fn duplicate_ips_across_groups() {
    let text = format!(
        "{BASE}  hosts:\n    - ips: [10.0.0.1, 10.0.0.2]\n      roles: [master]\n    - ips:\n        - 10.0.0.3\n        - 10.0.0.2\n      roles: [node]\n"
    );
    assert_eq!(
        problems(&text),
        [
            "Clusterfile:12:11: document 1 (Cluster): spec.hosts[1].ips[1]: \"10.0.0.2\" appears twice (also at 8:23): list each host once"
        ]
    );
}

#[test]
fn mixed_ip_families() {
    let text = format!(
        "{BASE}  hosts:\n    - ips: [10.0.0.1]\n      roles: [master]\n    - ips: ['fd00::2']\n      roles: [node]\n"
    );
    assert_eq!(
        problems(&text),
        [
            "Clusterfile:10:13: document 1 (Cluster): spec.hosts[1].ips[0]: \"fd00::2\" is IPv6 but \"10.0.0.1\" (at 8:13) is IPv4: all hosts must be in one IP family"
        ]
    );
}

#[test]
fn no_master_and_no_hosts() {
    let text = format!("{BASE}  hosts:\n    - ips: [10.0.0.1]\n      roles: [node]\n");
    assert_eq!(
        problems(&text),
        [
            "Clusterfile:8:5: document 1 (Cluster): spec.hosts: no host has the role master: give at least one host group roles: [master] (groups: spec.hosts[0])"
        ]
    );
    assert_eq!(
        problems(BASE),
        [
            "Clusterfile:6:3: document 1 (Cluster): spec.hosts: missing: list the hosts, e.g. hosts: [{ips: [10.0.0.2], roles: [master]}]"
        ]
    );
}

#[test]
fn host_groups_need_addresses() {
    let text = format!(
        "{BASE}  hosts:\n    - ips: []\n      roles: [master]\n    - roles: [node]\n    - ips: 10.0.0.1\n"
    );
    assert_eq!(
        problems(&text),
        [
            "Clusterfile:8:12: document 1 (Cluster): spec.hosts[0].ips: empty: give the hosts' IP addresses",
            "Clusterfile:10:7: document 1 (Cluster): spec.hosts[1].ips: missing: give the hosts' IP addresses",
            "Clusterfile:11:12: document 1 (Cluster): spec.hosts[2].ips: expected a list, found a string: write it as [ ... ] or - items",
        ]
    );
}

#[test]
fn every_problem_is_reported_with_its_position() {
    let text = r#"apiVersion: sealer.io/v2
kind: Cluster
metadata:
  labels: {}
spec:
  env: [ NoEquals, "=x" ]
  ssh:
    port: twenty-two
  hosts:
    - ips: [ 10.0.0.1, not-an-ip ]
      roles: [ master, Bad_Role, "" ]
      labels:
        "bad key!": v
      taints: [ "k=v", "k:Never" ]
  dataRoot: relative/dir
"#;
    assert_eq!(
        problems(text),
        [
            "Clusterfile:4:3: document 1 (Cluster): metadata.name: missing: give the cluster a name",
            "Clusterfile:6:3: document 1 (Cluster): spec.image: missing: name the ClusterImage to install",
            "Clusterfile:6:10: document 1 (Cluster): spec.env[0]: \"NoEquals\" has no '=': write KEY=VALUE",
            "Clusterfile:6:20: document 1 (Cluster): spec.env[1]: \"=x\" has no key before '=': write KEY=VALUE",
            "Clusterfile:8:11: document 1 (Cluster): spec.ssh.port: \"twenty-two\" is not a port number: give a number from 1 to 65535",
            "Clusterfile:10:24: document 1 (Cluster): spec.hosts[0].ips[1]: \"not-an-ip\" is not an IP address",
            "Clusterfile:11:24: document 1 (Cluster): spec.hosts[0].roles[1]: \"Bad_Role\" is not a role name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63 characters",
            "Clusterfile:11:34: document 1 (Cluster): spec.hosts[0].roles[2]: empty item: remove it or give a value",
            "Clusterfile:13:9: document 1 (Cluster): spec.hosts[0].labels.bad key!: \"bad key!\" is not a label key: the name part must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            "Clusterfile:14:17: document 1 (Cluster): spec.hosts[0].taints[0]: \"k=v\" has no effect: write key=value:Effect, key:Effect, or key- to remove",
            "Clusterfile:14:24: document 1 (Cluster): spec.hosts[0].taints[1]: \"k:Never\": effect \"Never\" is not one of NoSchedule, PreferNoSchedule, NoExecute",
            "Clusterfile:15:13: document 1 (Cluster): spec.dataRoot: \"relative/dir\" is not an absolute path without '..': write e.g. /var/lib/sealer/data",
        ]
    );
}

#[test]
fn document_level_problems() {
    assert_eq!(
        problems(
            "apiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: x}\nspec: {path: a, data: b}\n"
        ),
        ["Clusterfile: no Cluster document: add one (apiVersion: sealer.io/v2, kind: Cluster)"]
    );
    let two = format!(
        "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n---\n{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n"
    );
    assert_eq!(
        problems(&two),
        [
            "Clusterfile:9:1: document 2 (Cluster): a second Cluster document (the first is document 1): keep one"
        ]
    );
    let syntax = format!(
        "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n  ssh:\n    passwd: *****\n"
    );
    let lines = problems(&syntax);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("Clusterfile:9:13: "), "{}", lines[0]);
    assert!(lines[0].ends_with(": fix the YAML syntax"), "{}", lines[0]);
    assert_eq!(
        problems(&format!(
            "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n  ssh: {{encrypted: true, passwd: x}}\n"
        )),
        [
            "Clusterfile:8:20: document 1 (Cluster): spec.ssh.encrypted: encrypted passwords are not supported: write the password itself, or use a key (pk)"
        ]
    );
    assert_eq!(
        problems(&format!(
            "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n  registry:\n    externalRegistry: {{port: 443}}\n"
        )),
        [
            "Clusterfile:9:23: document 1 (Cluster): spec.registry.externalRegistry.domain: missing: an external registry needs its domain"
        ]
    );
    assert_eq!(
        problems(&format!(
            "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n  masters: {{ipList: [10.0.0.2]}}\n"
        )),
        [
            "Clusterfile:7:10: document 1 (Cluster): spec.hosts: give either spec.hosts or the older spec.masters/spec.nodes, not both"
        ]
    );
}

#[test]
fn unknown_fields_are_warnings() {
    let file = parse(&format!(
        "{BASE}  hots: []\n  hosts: [{{ips: [10.0.0.1], roles: [master], label: {{}}}}]\n"
    ))
    .expect("valid");
    let warnings: Vec<String> = file
        .warnings
        .iter()
        .map(|warning| format!("{}:{} {}", warning.line, warning.column, warning.field))
        .collect();
    assert_eq!(warnings, ["7:3 spec.hots", "8:46 spec.hosts[0].label"]);
}

fn config_file(spec: &str) -> Clusterfile {
    let text = format!(
        "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n---\napiVersion: sealer.io/v1\nkind: Config\nmetadata:\n  name: cfg\nspec:\n{spec}"
    );
    parse(&text).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn config_creates_overwrites_and_merges() {
    let rootfs = tempfile::tempdir().expect("a temp dir");
    let create = config_file("  path: etc/new/app.yaml\n  data: |\n    a: 1\n");
    let written = create.apply_configs(rootfs.path()).expect("written");
    assert_eq!(written, [rootfs.path().join("etc/new/app.yaml")]);
    assert_eq!(
        std::fs::read_to_string(&written[0]).expect("a file"),
        "a: 1\n"
    );

    std::fs::write(
        rootfs.path().join("etc/multi.yaml"),
        "kind: A\nspec:\n  keep: true\n  list: [1, 2]\n---\nkind: B\n",
    )
    .expect("write");
    let merge = config_file(
        "  path: etc/multi.yaml\n  strategy: merge\n  data: |\n    spec:\n      list: [3]\n      added: x\n",
    );
    merge.apply_configs(rootfs.path()).expect("merged");
    assert_eq!(
        std::fs::read_to_string(rootfs.path().join("etc/multi.yaml")).expect("a file"),
        "kind: A\nspec:\n  added: x\n  keep: true\n  list:\n  - 3\n---\nkind: B\nspec:\n  added: x\n  list:\n  - 3\n"
    );

    let overwrite = config_file("  path: etc/multi.yaml\n  data: replaced\n");
    overwrite.apply_configs(rootfs.path()).expect("overwritten");
    assert_eq!(
        std::fs::read_to_string(rootfs.path().join("etc/multi.yaml")).expect("a file"),
        "replaced"
    );

    let app = config_file("  path: values.yaml\n  appName: nginx\n  data: x\n");
    assert_eq!(
        app.apply_configs(rootfs.path()).expect("written"),
        [rootfs.path().join("application/apps/nginx/values.yaml")]
    );
}

#[test]
fn config_process_pipelines() {
    let each = config_file(
        "  path: etc/s.yaml\n  process: value|toJson|toBase64\n  data: |\n    config:\n      username: root\n      passwd: xxx\n",
    );
    let expected = format!(
        "config: {}\n",
        base64_of(r#"{"passwd":"xxx","username":"root"}"#)
    );
    assert_eq!(each.configs[0].processed_data(), Ok(expected));
    let whole = config_file(
        "  path: etc/s.json\n  process: toJson\n  data: |\n    b: [1, two]\n    a: true\n",
    );
    assert_eq!(
        whole.configs[0].processed_data(),
        Ok(r#"{"a":true,"b":[1,"two"]}"#.to_owned())
    );
    let encoded = config_file("  path: etc/s.txt\n  process: toBase64\n  data: hello\n");
    assert_eq!(encoded.configs[0].processed_data(), Ok(base64_of("hello")));

    let rootfs = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(rootfs.path().join("manifests")).expect("mkdir");
    std::fs::write(
        rootfs.path().join("manifests/secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  old: {}\n",
            base64_of("kept")
        ),
    )
    .expect("write");
    let secret = config_file(
        "  path: manifests/secret.yaml\n  process: value|toBase64|toSecret\n  data: |\n    password: p4ss\n",
    );
    secret.apply_configs(rootfs.path()).expect("written");
    assert_eq!(
        std::fs::read_to_string(rootfs.path().join("manifests/secret.yaml")).expect("a file"),
        format!(
            "apiVersion: v1\ndata:\n  old: {}\n  password: {}\nkind: Secret\nmetadata:\n  name: s\n",
            base64_of("kept"),
            base64_of("p4ss")
        )
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn config_paths_stay_in_the_rootfs() {
    let text = format!(
        "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n---\nkind: Config\nspec:\n  path: ../../etc/passwd\n  data: x\n  process: toYaml\n---\nkind: Config\nspec:\n  path: /etc/passwd\n---\nkind: Config\nspec: {{path: a, data: b, appName: ../x}}\n"
    );
    assert_eq!(
        problems(&text),
        [
            "Clusterfile:11:9: document 2 (Config): spec.path: \"../../etc/passwd\" leaves the rootfs with '..': write a path inside it",
            "Clusterfile:13:12: document 2 (Config): spec.process: unknown step \"toYaml\": use value, toJson, toBase64 and toSecret joined by |",
            "Clusterfile:17:3: document 3 (Config): spec.data: missing: give the file's content",
            "Clusterfile:17:9: document 3 (Config): spec.path: \"/etc/passwd\" is absolute: write it relative to the rootfs (e.g. etc/passwd)",
            "Clusterfile:20:35: document 4 (Config): spec.appName: \"../x\" is not an app name (it names application/apps/<name>)",
        ]
    );

    let rootfs = tempfile::tempdir().expect("a temp dir");
    let outside = tempfile::tempdir().expect("a temp dir");
    std::os::unix::fs::symlink(outside.path(), rootfs.path().join("etc")).expect("symlink");
    let escape = config_file("  path: etc/x.yaml\n  data: x\n");
    let error = escape.apply_configs(rootfs.path()).expect_err("refused");
    assert!(
        error.to_string().contains("through a symbolic link"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("Clusterfile:9:1: Config \"cfg\": cannot write "),
        "{error}"
    );
    assert!(!outside.path().join("x.yaml").exists());
}

fn plugin_file(plugin: &str) -> Result<Clusterfile, ClusterfileError> {
    parse(&format!(
        "{BASE}  hosts:\n  - ips: [10.0.0.1]\n    roles: [master]\n  - ips: [10.0.0.2]\n    roles: [node]\n    labels: {{disk: ssd}}\n  - ips: [10.0.0.3]\n    roles: [node]\n---\n{plugin}"
    ))
}

#[test]
fn current_plugins() {
    let file = plugin_file("apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: p}\nspec:\n  type: SHELL\n  action: post-install|pre-init-host\n  data: echo hi\n").expect("valid");
    let hook = &file.hooks[0];
    let all: Vec<IpAddr> = file.cluster.hosts.iter().map(|host| host.ip).collect();
    let ips = |hosts: Vec<&Host>| {
        hosts
            .iter()
            .map(|host| host.ip.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ips(hook.targets(Phase::PostInstall, &file.cluster, &all)),
        ["10.0.0.1"]
    );
    assert_eq!(
        ips(hook.targets(Phase::PreInitHost, &file.cluster, &all)),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        "empty scope: every host"
    );
    assert_eq!(
        ips(hook.targets(Phase::PreInitHost, &file.cluster, &all[2..])),
        ["10.0.0.3"]
    );
    assert!(Phase::PostInstall.is_cluster_phase());
    assert!(!Phase::PreInitHost.is_cluster_phase());

    let errors = problems(&plugin_file_text(
        "apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: p}\nspec:\n  type: LABEL\n  action: pre-init|post-install\n  scope: Master\n  data: x\n",
    ));
    assert_eq!(
        errors,
        [
            "Clusterfile:20:9: document 2 (Plugin): spec.type: plugin type \"LABEL\" is not supported: only SHELL plugins are supported",
            "Clusterfile:21:11: document 2 (Plugin): spec.action: unknown phase \"pre-init\": use one of pre-install, post-install, pre-uninstall, post-uninstall, pre-scaleup, post-scaleup, upgrade, rollback, pre-init-host, post-init-host, pre-clean-host, post-clean-host, upgrade-host",
            "Clusterfile:22:10: document 2 (Plugin): spec.scope: \"Master\" is not a role name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63 characters",
        ]
    );
}

fn plugin_file_text(plugin: &str) -> String {
    format!(
        "{BASE}  hosts:\n  - ips: [10.0.0.1]\n    roles: [master]\n  - ips: [10.0.0.2]\n    roles: [node]\n    labels: {{disk: ssd}}\n  - ips: [10.0.0.3]\n    roles: [node]\n---\n{plugin}"
    )
}

#[test]
fn legacy_plugins() {
    let legacy = |action: &str, on: &str| {
        plugin_file(&format!(
            "apiVersion: sealer.aliyun.com/v1alpha1\nkind: Plugin\nmetadata: {{name: old}}\nspec:\n  type: SHELL\n  action: {action}\n  on: {on:?}\n  data: |\n    echo old\n"
        ))
    };
    let selected = |file: &Clusterfile| {
        let hook = &file.hooks[0];
        file.cluster
            .hosts
            .iter()
            .filter(|host| hook.selects(host, &file.cluster))
            .map(|host| host.ip.to_string())
            .collect::<Vec<_>>()
    };
    let file = legacy("PreInit|PostInstall|PreGuest", "").expect("valid");
    assert_eq!(
        file.hooks[0].phases,
        [Phase::PreInitHost, Phase::PostInstall]
    );
    assert_eq!(file.hooks[0].format, PluginFormat::Legacy);
    assert_eq!(file.hooks[0].script, "echo old");
    assert_eq!(selected(&file).len(), 3);
    let all: Vec<IpAddr> = file.cluster.hosts.iter().map(|host| host.ip).collect();
    assert_eq!(
        file.hooks[0]
            .targets(Phase::PostInstall, &file.cluster, &all)
            .len(),
        3,
        "v0.8 ran every phase on the selected hosts"
    );

    let file = legacy("Originally|PreJoin|PostJoin|PreClean|PostClean", "node").expect("valid");
    assert_eq!(
        file.hooks[0].phases,
        [
            Phase::PreInstall,
            Phase::PreScaleUp,
            Phase::PostScaleUp,
            Phase::PreCleanHost,
            Phase::PostCleanHost
        ]
    );
    assert_eq!(selected(&file), ["10.0.0.2", "10.0.0.3"]);
    assert_eq!(
        selected(&legacy("PostInstall", "master0").expect("valid")),
        ["10.0.0.1"]
    );
    assert_eq!(
        selected(&legacy("PostInstall", "10.0.0.1, 10.0.0.2-10.0.0.3").expect("valid")).len(),
        3
    );
    assert_eq!(
        selected(&legacy("PostInstall", "10.0.0.2-10.0.0.9").expect("valid")),
        ["10.0.0.2", "10.0.0.3"]
    );
    assert_eq!(
        selected(&legacy("PostInstall", "disk=ssd").expect("valid")),
        ["10.0.0.2"]
    );
    assert_eq!(
        selected(&legacy("PostInstall", "node-role.kubernetes.io/master=").expect("valid")),
        ["10.0.0.1"]
    );
    assert_eq!(
        selected(&legacy("PostInstall", "node-role.kubernetes.io/node=,disk!=ssd").expect("valid")),
        ["10.0.0.3"]
    );

    let error = legacy("PreInstall", "10.0.0.9-10.0.0.1").expect_err("invalid");
    let lines: Vec<String> = error.to_string().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "Clusterfile:21:11: document 2 (Plugin): spec.action: unknown action \"PreInstall\": use Originally, PreInit, PreJoin, PostJoin, PreGuest, PostInstall, PreClean or PostClean (or write the plugin as sealer.io/v1)",
            "Clusterfile:22:7: document 2 (Plugin): spec.on: \"10.0.0.9-10.0.0.1\" is not a range: write first-last with first <= last, one IP family",
        ]
    );
    let taint = plugin_file("apiVersion: sealer.aliyun.com/v1alpha1\nkind: Plugin\nmetadata: {name: t}\nspec: {type: TAINT, action: PreGuest, data: x}\n").expect_err("unsupported");
    assert!(taint.to_string().ends_with("spec.type: plugin type \"TAINT\" is not supported: set spec.hosts[].labels or spec.hosts[].taints in the Cluster instead"), "{taint}");
}

#[test]
fn plugins_from_an_image_directory() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        dir.path().join("b.yaml"),
        "apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: m}\nspec: {type: SHELL, action: post-install, data: two}\n---\napiVersion: v1\nkind: ConfigMap\n---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: a}\nspec: {type: SHELL, action: post-install, data: one}\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("a.yml"), "apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: z}\nspec: {type: SHELL, action: pre-init-host, data: three}\n").expect("write");
    std::fs::write(dir.path().join("notes.txt"), "kind: Plugin\n").expect("write");
    let hooks = plugins_from_dir(dir.path()).expect("valid");
    assert_eq!(
        hooks
            .iter()
            .map(|hook| hook.name.as_str())
            .collect::<Vec<_>>(),
        ["z", "m", "a"]
    );
    assert_eq!(
        hooks[1].source.to_string(),
        format!("{}:1:1", dir.path().join("b.yaml").display())
    );
    let ordered: Vec<&str> = hooks_in_phase(&hooks, Phase::PostInstall)
        .iter()
        .map(|hook| hook.script.as_str())
        .collect();
    assert_eq!(ordered, ["one", "two"]);
    assert!(
        plugins_from_dir(&dir.path().join("missing"))
            .expect("none")
            .is_empty()
    );

    std::fs::write(
        dir.path().join("c.yaml"),
        "kind: Plugin\nmetadata: {name: bad}\nspec: {type: SHELL, data: x}\n",
    )
    .expect("write");
    let error = plugins_from_dir(dir.path()).expect_err("invalid");
    assert_eq!(
        error.to_string(),
        format!(
            "{}:3:7: document 1 (Plugin): spec.action: missing: give the phases, e.g. action: pre-init-host|post-install",
            dir.path().join("c.yaml").display()
        )
    );
}

fn launch_file(cluster_extra: &str, application: &str) -> Clusterfile {
    let text = format!(
        "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n{cluster_extra}---\napiVersion: sealer.io/v2\nkind: Application\nmetadata: {{name: a}}\n{application}"
    );
    parse(&text).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn launch_command_precedence() {
    let image_apps: BTreeMap<String, Vec<String>> = [
        (
            "calico".to_owned(),
            vec!["kubectl apply -f application/apps/calico/".to_owned()],
        ),
        (
            "nginx".to_owned(),
            vec!["helm install nginx application/apps/nginx/".to_owned()],
        ),
    ]
    .into();
    let image_launch = ["calico".to_owned(), "nginx".to_owned()];
    let none: [String; 0] = [];
    let image_cmds = ["echo image".to_owned()];

    let spec_cmd = launch_file("  cmd: [echo cluster]\n", "spec:\n  cmds: [echo app]\n");
    assert_eq!(
        spec_cmd
            .launch_commands(&image_cmds, &image_launch, &image_apps)
            .expect("cmds"),
        ["echo cluster"]
    );
    let app_cmds = launch_file("", "spec:\n  cmds: [echo app]\n");
    assert_eq!(
        app_cmds
            .launch_commands(&image_cmds, &image_launch, &image_apps)
            .expect("cmds"),
        ["echo app"]
    );
    let image = launch_file("", "spec: {}\n");
    assert_eq!(
        image
            .launch_commands(&image_cmds, &image_launch, &image_apps)
            .expect("cmds"),
        ["echo image"]
    );
    assert_eq!(
        image
            .launch_commands(&none, &image_launch, &image_apps)
            .expect("cmds"),
        [
            "kubectl apply -f application/apps/calico/",
            "helm install nginx application/apps/nginx/"
        ]
    );
    let chosen = launch_file(
        "",
        "spec:\n  launchApps: [nginx]\n  configs:\n  - name: nginx\n    launch:\n      cmds: [helm install web application/apps/nginx/]\n  - name: calico\n    launch:\n      cmds: [ignored]\n",
    );
    assert_eq!(
        chosen
            .launch_commands(&none, &image_launch, &image_apps)
            .expect("cmds"),
        ["helm install web application/apps/nginx/"]
    );
    let nothing = launch_file("  appNames: ['']\n", "spec:\n  launchApps: [nginx]\n");
    assert!(
        nothing
            .launch_commands(&none, &image_launch, &image_apps)
            .expect("cmds")
            .is_empty()
    );
    let unknown = launch_file("  appNames: [calico, redis]\n", "spec: {}\n");
    assert_eq!(
        unknown
            .launch_commands(&none, &image_launch, &image_apps)
            .expect_err("unknown")
            .to_string(),
        "Clusterfile:8:13: app \"redis\" is not in the image (its apps: calico, nginx); fix the name or drop it"
    );
}

#[test]
fn application_files_and_problems() {
    let file = launch_file(
        "",
        "spec:\n  configs:\n  - name: nginx\n    files:\n    - path: values.yaml\n      strategy: merge\n      data: |\n        replicas: 2\n  - name: calico\n    files:\n    - {path: x.yaml, data: y}\n",
    );
    let rootfs = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(rootfs.path().join("application/apps/nginx")).expect("mkdir");
    std::fs::write(
        rootfs.path().join("application/apps/nginx/values.yaml"),
        "image: nginx\nreplicas: 1\n",
    )
    .expect("write");
    let application = file.application.as_ref().expect("an Application");
    let written = application
        .apply_files(rootfs.path(), &["nginx".to_owned()])
        .expect("written");
    assert_eq!(
        written,
        [rootfs.path().join("application/apps/nginx/values.yaml")]
    );
    assert_eq!(
        std::fs::read_to_string(&written[0]).expect("a file"),
        "image: nginx\nreplicas: 2\n"
    );
    assert!(
        !rootfs.path().join("application/apps/calico").exists(),
        "configs of apps not launched are ignored"
    );

    let text = format!(
        "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n---\nkind: Application\nspec:\n  configs:\n  - env: [X]\n    launch: {{}}\n    files: [{{path: ../x, data: y, strategy: insert}}]\n"
    );
    assert_eq!(
        problems(&text),
        [
            "Clusterfile:12:5: document 2 (Application): spec.configs[0].name: missing: name the app these settings are for",
            "Clusterfile:12:11: document 2 (Application): spec.configs[0].env[0]: \"X\" has no '=': write KEY=VALUE",
            "Clusterfile:13:13: document 2 (Application): spec.configs[0].launch: give launch.cmds: the commands that launch the app",
            "Clusterfile:14:20: document 2 (Application): spec.configs[0].files[0].path: \"../x\" leaves the rootfs with '..': write a path inside it",
            "Clusterfile:14:45: document 2 (Application): spec.configs[0].files[0].strategy: \"insert\" is not a strategy: use overwrite or merge",
        ]
    );
}

#[test]
fn corpus_clusterfiles() {
    let Some(dir) = testkit::corpus::corpus_dir("kubefiles") else {
        return;
    };
    let calico = dir.join("sealer-apps-calico/example/Clusterfile.yaml");
    if calico.exists() {
        let file = Clusterfile::read(&calico).unwrap_or_else(|error| panic!("{error}"));
        let cluster = &file.cluster;
        assert_eq!(cluster.name, "default-kubernetes-cluster");
        assert_eq!(cluster.hosts.len(), 4);
        assert_eq!(cluster.masters().count(), 3);
        assert_eq!(cluster.master0().ssh.port, 22);
        assert_eq!(
            cluster.host(ip("192.168.0.3")).expect("a host").ssh.port,
            2222
        );
        assert_eq!(
            file.configs[0].path,
            PathBuf::from("etc/custom-resources.yaml")
        );
    } else {
        println!("skipped: {} is not in the corpus", calico.display());
    }
    let nvidia = dir.join("sealer-apps-nvidia-plugin/Clusterfile");
    if nvidia.exists() {
        let error = Clusterfile::read(&nvidia).expect_err("`passwd: *****` is a YAML alias");
        assert_eq!(error.problems().len(), 1, "{error}");
        assert_eq!(error.problems()[0].line, 11, "{error}");
    } else {
        println!("skipped: {} is not in the corpus", nvidia.display());
    }
}

#[test]
fn registry_credentials_come_in_pairs() {
    let text = format!(
        "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n  registry:\n    localRegistry:\n      username: admin\n    externalRegistry:\n      domain: harbor.example.com\n      password: p\n"
    );
    assert_eq!(
        problems(&text),
        [
            "Clusterfile:10:7: document 1 (Cluster): spec.registry.localRegistry: username and password go together: give both, or neither for a registry without authentication",
            "Clusterfile:12:7: document 1 (Cluster): spec.registry.externalRegistry: username and password go together: give both, or neither for a registry without authentication"
        ]
    );
}

#[test]
fn registry_names_and_users_are_checked() {
    let text = format!(
        "{BASE}  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n  registry:\n    localRegistry:\n      domain: 'sea\"hub'\n      username: 'a:b'\n      password: p\n      cert:\n        subjectAltName:\n          dnsNames: ['*.ok.example', 'héllo.example']\n"
    );
    assert_eq!(
        problems(&text),
        [
            "Clusterfile:10:15: document 1 (Cluster): spec.registry.localRegistry.domain: \"sea\\\"hub\" is not a host name: use DNS labels of ASCII letters, digits and `-` separated by dots, or an IP address",
            "Clusterfile:11:17: document 1 (Cluster): spec.registry.localRegistry.username: a user name cannot hold `:` or control characters (it goes into an htpasswd line)",
            "Clusterfile:15:38: document 1 (Cluster): spec.registry.localRegistry.cert.subjectAltName.dnsNames[1]: \"héllo.example\" is not a host name: use DNS labels of ASCII letters, digits and `-` separated by dots, or an IP address",
        ]
    );
}
