//! The table of Helm's own functions (`include`, `tpl`, `toYaml`, `required`, ...): every
//! `tests/cases/*.cases` file, rendered with every function a chart template can call. The
//! case data is dot and `$`; output is compared before Helm's `<no value>` clean-up.

use std::path::Path;

#[test]
fn template_cases() {
    let functions = helm::helm_functions();
    testkit::template_cases::run_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases"),
        &functions,
        &[],
    );
}
