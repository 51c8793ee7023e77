//! `images CONTEXT`: the container images a build of a context would cache, and why.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kubefile::context::DirContext;
use scan::{ChartValues, ListSource, ScanOptions, ScanReport};

use crate::flags::{ImagesArgs, OutputFormat, ScanArgs};

/// Scans the context and prints the images; warnings go to standard error.
pub fn images_of_context(args: &ImagesArgs) -> Result<ExitCode> {
    let context = args.context.clone().context("no build context given")?;
    if !context.is_dir() {
        bail!("build context {} is not a directory", context.display());
    }
    let options = scan_options(&args.scan)?;
    let report = scan::scan(&DirContext::new(&context), &options);
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Table => print_report(&report, args.why),
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    for chart in &report.partial_charts {
        eprintln!(
            "warning: chart {chart} could not be rendered completely; its images were read from its annotations and values, and may be incomplete"
        );
    }
    if args.strict && !report.partial_charts.is_empty() {
        eprintln!(
            "error: {} chart(s) scanned only partially (--strict)",
            report.partial_charts.len()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The scan options the flags give.
pub fn scan_options(args: &ScanArgs) -> Result<ScanOptions> {
    let mut chart_values: BTreeMap<String, ChartValues> = BTreeMap::new();
    for entry in &args.values {
        let (chart, file) = entry
            .split_once('=')
            .with_context(|| format!("--values {entry}: expected CHART=FILE"))?;
        chart_values
            .entry(chart.to_owned())
            .or_default()
            .values_files
            .push(PathBuf::from(file));
    }
    for (entries, as_strings) in [(&args.set, false), (&args.set_string, true)] {
        for entry in entries {
            let (chart, expression) = scan::options::split_chart_expression(entry)
                .map(|(chart, expression)| (chart.to_owned(), expression.to_owned()))
                .with_context(|| {
                    format!("--set {entry}: expected CHART.KEY=VALUE (e.g. nginx.image.tag=1.25)")
                })?;
            let values = chart_values.entry(chart).or_default();
            if as_strings {
                values.set_string.push(expression);
            } else {
                values.set.push(expression);
            }
        }
    }
    Ok(ScanOptions {
        image_lists: lists(&args.image_lists),
        ignored_image_lists: lists(&args.ignored_image_lists),
        chart_values,
        ..ScanOptions::default()
    })
}

/// List files given as flags, read when the scan runs.
fn lists(files: &[PathBuf]) -> Vec<ListSource> {
    files.iter().cloned().map(ListSource::File).collect()
}

fn print_report(report: &ScanReport, why: bool) {
    for image in &report.images {
        println!("{}", image.reference);
        if !why {
            continue;
        }
        for source in &image.sources {
            let place = match source.line {
                Some(line) => format!("{}:{line}", source.file),
                None => source.file.clone(),
            };
            let kind = serde_json::to_value(source.kind)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut details = vec![kind];
            if let Some(chart) = &source.chart {
                details.push(format!("chart {chart}"));
            }
            if let Some(object) = &source.object
                && !object.kind.is_empty()
            {
                details.push(format!("{} {}", object.kind, object.name));
            }
            if let Some(path) = &source.path {
                details.push(path.clone());
            }
            println!("    {place} ({})", details.join(", "));
        }
    }
    for ignored in &report.ignored {
        eprintln!(
            "ignored {} ({} at {})",
            ignored.reference, ignored.pattern, ignored.origin
        );
    }
}
