//! The Sprig reference table: every `tests/cases/*.cases` file (format in testkit's
//! `template_cases`), rendered with gotemplate plus `sprig::register`.

use std::path::Path;

#[test]
fn template_cases() {
    let mut functions = gotemplate::Functions::new();
    sprig::register(&mut functions);
    testkit::template_cases::run_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases"),
        &functions,
        &[
            (
                "b64enc needs a string",
                "Go checks a literal argument's type before the call (`expected string; found 12`); our functions see values, not literals, and say `wrong type for value; expected string; got int`",
            ),
            (
                "upper of a number",
                "as for b64enc: the literal-argument wording",
            ),
            (
                "toStrings",
                "our values have no []string type: typeOf says []interface {} (the printed list is the same)",
            ),
        ],
    );
}
