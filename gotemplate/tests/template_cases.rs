//! The Go `text/template` reference table: every `tests/cases/*.cases` file (format in
//! testkit's `template_cases`), rendered with the builtins only.

use std::path::Path;

#[test]
fn template_cases() {
    let functions = gotemplate::Functions::new();
    testkit::template_cases::run_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases"),
        &functions,
        &[],
    );
}
