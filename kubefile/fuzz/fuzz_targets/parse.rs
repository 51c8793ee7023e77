//! Fuzz target `parse`: feeds arbitrary UTF-8 text to the Kubefile parser and checks that
//! nothing panics along the way: `kubefile::parse`, rendering every diagnostic (`render`
//! and `short`), printing an error-free AST back with `printer::print` and re-parsing that
//! output (no equality is asserted), and `parse_and_plan` against an empty in-memory context.
#![no_main]

use kubefile::SourceFile;
use kubefile::context::MemoryContext;
use kubefile::plan::PlanOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = kubefile::parse(text);
    let file = SourceFile::new("Kubefile", text);
    for d in &parsed.diagnostics {
        let _ = d.render(&file, false);
        let _ = d.short(&file);
    }
    if !parsed.has_errors() {
        let printed = kubefile::printer::print(&parsed.kubefile);
        let _ = kubefile::parse(&printed);
    }
    let ctx = MemoryContext::new();
    let _ = kubefile::parse_and_plan(&file, &PlanOptions::new(&ctx));
});
