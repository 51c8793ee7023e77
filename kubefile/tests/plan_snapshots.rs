//! Whole JSON plans, as `sealer-build parse` prints them, kept as reviewed snapshots so that a
//! change to a field name or shape is a visible diff.

use kubefile::context::{DirContext, MemoryContext};
use kubefile::plan::PlanOptions;
use kubefile::{SourceFile, parse_and_plan};

fn options(context: &dyn kubefile::context::ContextView) -> PlanOptions<'_> {
    let mut options = PlanOptions::new(context);
    options.target_platform = "linux/amd64".parse().unwrap();
    options.build_platform = "linux/amd64".parse().unwrap();
    options
}

#[test]
fn example_app_plan() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/app");
    let text = std::fs::read_to_string(dir.join("Kubefile")).unwrap();
    let context = DirContext::new(&dir);
    let planned = parse_and_plan(&SourceFile::new("Kubefile", text), &options(&context));
    assert!(planned.diagnostics.is_empty(), "{:?}", planned.diagnostics);
    insta::assert_json_snapshot!(planned.plan.unwrap());
}

#[test]
fn every_instruction_plan() {
    let text = r#"# syntax=registry.local/sealer/kubefile-frontend:1
ARG BASE=registry.local/kubernetes:v1.25.3
FROM --platform=linux/amd64 ${BASE}
ARG VERSION=v1.2.0
LABEL maintainer=platform-team
LABEL org.opencontainers.image.version=${VERSION}
ENV REGISTRY_DOMAIN=sea.hub REGISTRY_PORT=5000
COPY --chmod=0755 bin/ bin/
ADD https://example.com/tools/helm-${VERSION}.tgz opt/
COPY <<EOF etc/registry.env
domain=${REGISTRY_DOMAIN}:${REGISTRY_PORT}
EOF
RUN chmod +x bin/* && ls bin
CNI calico local://apps/calico/calico.sh
CSI openebs local://apps/openebs
APP dashboard local://apps/dashboard
APPENV dashboard replicas=2
APPCMDS calico ["bash calico.sh ${VERSION}", "kubectl -n kube-system rollout status ds/calico-node"]
KUBEVERSION >=1.22.0 <1.27.0
LAUNCH ["calico", "openebs", "dashboard"]
"#;
    let context = MemoryContext::new()
        .with_file("bin/kubectl")
        .with_file("apps/calico/calico.sh")
        .with_file("apps/openebs/operator.yaml")
        .with_file("apps/dashboard/Chart.yaml")
        .with_file("apps/dashboard/values.yaml")
        .with_file("apps/dashboard/templates/deploy.yaml");
    let planned = parse_and_plan(&SourceFile::new("Kubefile", text), &options(&context));
    assert!(planned.diagnostics.is_empty(), "{:?}", planned.diagnostics);
    insta::assert_json_snapshot!(planned.plan.unwrap());
}
