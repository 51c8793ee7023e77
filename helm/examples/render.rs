//! Renders a chart directory as `helm template release-name CHART` would print it:
//! `cargo run -p helm --example render -- CHART_DIR [--set EXPR]...`.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: render CHART_DIR [--set EXPR]...");
        return ExitCode::from(2);
    };
    let mut options = helm::RenderOptions::new();
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--set", Some(value)) => options.set.push(value),
            ("--set-string", Some(value)) => options.set_string.push(value),
            _ => {
                eprintln!("unknown or incomplete flag {flag}");
                return ExitCode::from(2);
            }
        }
    }
    let result =
        helm::Chart::load_dir(Path::new(&dir)).and_then(|chart| helm::render(&chart, &options));
    match result {
        Ok(rendered) => {
            for error in &rendered.errors {
                eprintln!("error: {}", error.message);
            }
            for manifest in &rendered.manifests {
                println!("---\n# Source: {}\n{}", manifest.template, manifest.text);
            }
            if rendered.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}
