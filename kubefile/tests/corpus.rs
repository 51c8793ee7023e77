//! Every Kubefile of the shared corpus (`../shared/corpus/kubefiles/`, real files written by
//! others, with `EXPECTED.md` saying how the original tool reads them) parses; and its plan is
//! what the original tool would make, except where we deliberately differ (each case says why).
//!
//! Skipped, with a message, where `../shared` is absent (a user's clone).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kubefile::context::{ContextView, DirContext, EntryKind, MemoryContext};
use kubefile::plan::{Application, BaseImage, BuildPlan, PlanOptions, Platform, Step};
use kubefile::{SourceFile, parse, parse_and_plan};

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SEALER_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
        PathBuf::from,
    );
    if dir.join("kubefiles").is_dir() {
        Some(dir.join("kubefiles"))
    } else {
        eprintln!(
            "skipped: the shared corpus is not at {} (set SEALER_CORPUS to its path)",
            dir.display()
        );
        None
    }
}

fn read(dir: &Path) -> SourceFile {
    let path = dir.join("Kubefile");
    SourceFile::new(
        path.display().to_string(),
        std::fs::read_to_string(&path).unwrap(),
    )
}

fn plan_with(
    dir: &Path,
    context: &dyn ContextView,
    platform: &str,
    base: Option<BaseImage>,
) -> Result<BuildPlan, Vec<String>> {
    let file = read(dir);
    let mut options = PlanOptions::new(context);
    options.target_platform = platform.parse().unwrap();
    options.build_platform = "linux/amd64".parse().unwrap();
    options.base = base;
    let planned = parse_and_plan(&file, &options);
    let errors: Vec<String> = planned
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.short(&file))
        .collect();
    planned.plan.ok_or(errors)
}

fn plan(name: &str) -> Result<BuildPlan, Vec<String>> {
    let dir = corpus_dir().unwrap().join(name);
    plan_with(&dir, &DirContext::new(&dir), "linux/amd64", None)
}

fn accepted(name: &str) -> BuildPlan {
    plan(name).unwrap_or_else(|errors| panic!("{name} was rejected: {errors:#?}"))
}

fn rejected(name: &str) -> Vec<String> {
    match plan(name) {
        Ok(_) => panic!("{name} was accepted"),
        Err(errors) => errors
            .into_iter()
            .map(|e| e.split_once("/Kubefile:").unwrap().1.to_owned())
            .collect(),
    }
}

fn env(plan: &BuildPlan) -> BTreeMap<&str, &str> {
    plan.extension
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn app<'p>(plan: &'p BuildPlan, name: &str) -> &'p Application {
    plan.extension
        .applications
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no app {name}"))
}

#[test]
fn every_corpus_kubefile_parses_without_syntax_errors() {
    let Some(corpus) = corpus_dir() else { return };
    let mut count = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let dir = entry.unwrap().path();
        let file = read(&dir);
        let parsed = parse(file.text());
        let errors: Vec<String> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.short(&file))
            .collect();
        // The one file with a syntax error: see `docs_api_kubefile_is_rejected`.
        if dir.ends_with("sealer-docs-api-kubefile") {
            assert_eq!(errors.len(), 1, "{errors:?}");
        } else {
            assert!(errors.is_empty(), "{}: {errors:#?}", dir.display());
            assert!(!parsed.kubefile.instructions.is_empty());
        }
        count += 1;
    }
    assert_eq!(count, 20, "the corpus has 20 Kubefiles");
}

#[test]
fn helmfile_keeps_a_continued_cmd_as_one_command() {
    if corpus_dir().is_none() {
        return;
    }
    let plan = accepted("labring-actions-helmfile");
    assert_eq!(plan.config.labels["sealos.io.type"], "patch");
    assert_eq!(
        plan.extension.launch.cmds,
        vec![
            "cp -f ./opt/helmfile /usr/bin/helmfile     && mkdir -p /root/.local/share/helm/plugins/helm-diff     && cp -r -f ./opt/diff /root/.local/share/helm/plugins/helm-diff"
        ]
    );
}

/// The original records ENV verbatim (`${NAME:-"minio"}`) and mangles values with spaces into
/// bogus keys; we substitute like a Dockerfile and keep the quoted value whole.
#[test]
fn minio_env_is_substituted_not_mangled() {
    if corpus_dir().is_none() {
        return;
    }
    let plan = accepted("labring-actions-minio");
    let env = env(&plan);
    assert_eq!(env["NAME"], "minio");
    assert_eq!(env["NAMESPACE"], "minio");
    assert_eq!(env["CHARTS"], "./charts/minio");
    assert!(env["HELM_OPTS"].starts_with(" --set service.type=NodePort --set consoleService"));
    assert!(env["HELM_OPTS"].ends_with("--set persistence.size=10Gi "));
    assert_eq!(env.len(), 4, "no bogus keys: {env:?}");
    // CMD in JSON form is one command per element (the original kept the brackets).
    assert_eq!(
        plan.extension.launch.cmds,
        vec!["helm upgrade -i $(NAME) $(CHARTS) -n $(NAMESPACE) --create-namespace $(HELM_OPTS)"]
    );
}

#[test]
fn mariadb_operator_env_and_cmd() {
    if corpus_dir().is_none() {
        return;
    }
    let plan = accepted("labring-actions-mariadb-operator");
    let env = env(&plan);
    assert_eq!(env["NAME"], "mariadb-operator");
    assert_eq!(env["CHARTS"], "./charts/mariadb-operator");
    assert_eq!(env["HELM_OPTS"], "");
    assert_eq!(plan.extension.launch.cmds.len(), 1);
    assert!(plan.extension.launch.cmds[0].starts_with("helm upgrade -i $(NAME) $(CHARTS)"));
}

/// The original accepts these because it never looks at COPY sources while parsing (the build
/// fails later, in buildah); the corpus copies lack sources their repositories download in CI.
#[test]
fn missing_copy_sources_are_rejected_at_the_line() {
    if corpus_dir().is_none() {
        return;
    }
    assert_eq!(
        rejected("labring-actions-nerdctl"),
        vec!["4:6: error: `opt` does not exist in the build context"]
    );
    assert_eq!(
        rejected("labring-calico-v3.22.1"),
        vec!["3:6: error: `registry` does not exist in the build context"]
    );
    assert_eq!(
        rejected("sealer-apps-nvidia-plugin"),
        vec!["2:6: error: `./nvidia-docker.tar` does not exist in the build context"]
    );
}

/// The original turns `CMD ["a","b"]` into one literal command with brackets; we run each.
#[test]
fn json_cmd_runs_each_element() {
    if corpus_dir().is_none() {
        return;
    }
    assert_eq!(
        accepted("labring-coredns").extension.launch.cmds,
        vec!["chmod a+x manifests/coredns.sh", "sh manifests/coredns.sh"]
    );
    assert_eq!(
        accepted("sealer-apps-mysql-operator").extension.launch.cmds,
        vec![
            "kubectl apply -f manifests/bundle.yaml",
            "kubectl apply -f manifests/cr.yaml"
        ]
    );
    let kafka = accepted("sealer-apps-strimzi-kafka");
    assert_eq!(kafka.extension.launch.cmds.len(), 4);
    assert!(kafka.extension.launch.cmds[2].contains(r#"'{"metadata": {"annotations""#));
    assert_eq!(
        kafka.base.image.as_deref(),
        Some("registry.cn-qingdao.aliyuncs.com/sealer-apps/openebs-localpv:2.11.0")
    );
}

#[test]
fn rootfs_labels_keep_escaped_dollars_literal() {
    if corpus_dir().is_none() {
        return;
    }
    let plan = accepted("labring-rootfs");
    assert_eq!(
        plan.config.labels["init"],
        "init.sh $criData $registryDomain $registryPort $registryUsername $registryPassword"
    );
    assert_eq!(plan.config.author.as_deref(), Some("sealyun"));
    assert_eq!(env(&plan)["registryPort"], "5000");
    assert_eq!(env(&plan).len(), 7);
}

#[test]
fn apps_calico_and_flannel() {
    if corpus_dir().is_none() {
        return;
    }
    let calico = accepted("sealer-apps-calico");
    assert_eq!(
        calico.base.image.as_deref(),
        Some("kubernetes:v1.19.8-alpine")
    );
    assert_eq!(calico.extension.launch.cmds.len(), 2);
    let flannel = accepted("sealer-apps-flannel");
    assert!(matches!(&flannel.steps[0], Step::Run(_)));
    let Step::Copy(copy) = &flannel.steps[1] else {
        panic!("expected a copy step")
    };
    assert_eq!((copy.dest.as_str(), copy.dest_is_dir), ("scripts", true));
}

/// FROM with a trailing `# comment`: the original's parser passes it to buildah, which fails
/// ("FROM requires either one argument, or three"); we say so at the line, with the reason.
#[test]
fn docs_api_kubefile_is_rejected() {
    if corpus_dir().is_none() {
        return;
    }
    assert_eq!(
        rejected("sealer-docs-api-kubefile"),
        vec!["1:24: error: FROM takes one image reference, but 4 words were given"]
    );
}

/// Rejected by the original too: the app directories are not in the documentation's context.
#[test]
fn appenv_docs_example_is_rejected_for_missing_apps() {
    if corpus_dir().is_none() {
        return;
    }
    assert_eq!(
        rejected("sealer-docs-appenv"),
        vec![
            "2:10: error: APP source `local://app1` does not exist in the build context",
            "3:10: error: APP source `local://app2` does not exist in the build context",
        ]
    );
}

/// A context on disk plus extra files (the corpus leaves out downloads).
struct WithExtra {
    disk: DirContext,
    extra: MemoryContext,
}

impl ContextView for WithExtra {
    fn kind(&self, path: &str) -> Option<EntryKind> {
        self.extra.kind(path).or_else(|| self.disk.kind(path))
    }

    fn list(&self, path: &str) -> Vec<String> {
        let mut names = self.disk.list(path);
        names.extend(self.extra.list(path));
        names.sort();
        names.dedup();
        names
    }
}

/// Accepted by the original only because its base image has an app `calico`.
#[test]
fn kyverno_launches_an_app_of_its_base_image() {
    let Some(corpus) = corpus_dir() else { return };
    let dir = corpus.join("sealer-docs-kyverno");
    let context = WithExtra {
        disk: DirContext::new(&dir),
        extra: MemoryContext::new().with_file("install.yaml"),
    };
    let calico = Application {
        name: "calico".into(),
        app_type: "shell".into(),
        files: vec!["calico.sh".into()],
        version: "v1".into(),
        env: BTreeMap::new(),
        cmds: Vec::new(),
    };
    let base = BaseImage {
        applications: vec![calico],
        ..BaseImage::default()
    };
    let plan = plan_with(&dir, &context, "linux/amd64", Some(base)).unwrap();
    assert_eq!(plan.extension.launch.app_names, vec!["calico", "kyverno"]);
    let kyverno = app(&plan, "kyverno");
    assert_eq!(kyverno.app_type, "shell");
    assert_eq!(kyverno.files, vec!["redirect-registry.sh"]);
    assert_eq!(
        kyverno.cmds,
        vec!["sh redirect-registry.sh -r sea.hub:5000"]
    );
    assert_eq!(
        plan.config.labels["app.alpha.sealer.io/image-policy-plugin"],
        "kyverno"
    );

    let without_calico = plan_with(&dir, &context, "linux/amd64", Some(BaseImage::default()));
    let errors = without_calico.unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].ends_with(
        "7:9: error: LAUNCH names unknown app `calico`: this Kubefile and its base image docker.io/sealerio/kubernetes:v1.22.15-sealerio-2-official-docker-1 do not declare it"
    ), "{errors:?}");

    let unresolved = plan_with(&dir, &context, "linux/amd64", None).unwrap();
    assert_eq!(
        unresolved.extension.launch.app_names,
        vec!["calico", "kyverno"]
    );
}

/// Same apps as the original, except that launch files of directory sources have no leading
/// `/` (the original's `/a.yaml` comes from a path-stripping slip).
#[test]
fn appcmds_fixture_detects_app_types() {
    if corpus_dir().is_none() {
        return;
    }
    let plan = accepted("sealer-fixture-build-with-appcmds");
    let yaml = app(&plan, "yamlapp");
    assert_eq!(
        (yaml.app_type.as_str(), yaml.files.clone()),
        (
            "kube",
            vec!["a.yaml".into(), "b.yaml".into(), "c.yaml".into()]
        )
    );
    let shell = app(&plan, "shellapp");
    assert_eq!(
        (shell.app_type.as_str(), shell.files.clone()),
        ("shell", vec!["a.sh".into(), "b.sh".into(), "c.sh".into()])
    );
    let mixed = app(&plan, "mixedapp");
    assert_eq!(mixed.app_type, "");
    assert!(mixed.files.is_empty());
    assert_eq!(mixed.cmds, vec!["kubectl apply -f app.yaml"]);
    assert_eq!(
        plan.extension.launch.app_names,
        vec!["mixedapp", "shellapp"]
    );
}

#[test]
fn fixtures_with_cmds_launch_and_imagelist() {
    if corpus_dir().is_none() {
        return;
    }
    assert_eq!(
        accepted("sealer-fixture-build-with-cmds")
            .extension
            .launch
            .cmds,
        vec!["kubectl apply -f manifests/app.yaml"]
    );
    let launch = accepted("sealer-fixture-build-with-launch");
    assert_eq!(launch.extension.launch.app_names, vec!["myapp"]);
    assert_eq!(app(&launch, "myapp").files, vec!["app.yaml"]);
    assert_eq!(app(&launch, "myapp").app_type, "kube");
    let bare = accepted("sealer-fixture-build-with-imagelist-flag");
    assert!(bare.base.image.is_none() && bare.steps.is_empty());
}

#[test]
fn multi_arch_fixture_copies_the_target_arch() {
    let Some(corpus) = corpus_dir() else { return };
    let dir = corpus.join("sealer-fixture-build-with-multi-arch");
    for arch in ["amd64", "arm64"] {
        let plan = plan_with(&dir, &DirContext::new(&dir), &format!("linux/{arch}"), None).unwrap();
        let Step::Copy(copy) = &plan.steps[0] else {
            panic!("expected a copy")
        };
        assert_eq!(
            serde_json::to_value(&copy.sources).unwrap(),
            serde_json::json!([{"type": "path", "path": format!("{arch}/bin")}])
        );
        assert_eq!(
            plan.platform,
            format!("linux/{arch}").parse::<Platform>().unwrap()
        );
    }
    let errors = plan_with(&dir, &DirContext::new(&dir), "linux/s390x", None).unwrap_err();
    assert!(
        errors[0].ends_with("2:6: error: `s390x/bin` does not exist in the build context"),
        "{errors:?}"
    );
}
