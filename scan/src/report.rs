//! What a scan found: images with the places they came from, warnings, charts scanned only
//! partially, and images an ignore list removed. [`Collector`] gathers hits from every source
//! and turns them into a sorted, de-duplicated, deterministic [`ScanReport`].

use std::collections::BTreeMap;

use image::Reference;
use serde::Serialize;

/// Where a discovered image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// An image field of a Kubernetes object in a manifest file.
    Manifest,
    /// A line of an image list file.
    ImageList,
    /// An image field in a Helm chart's rendered output.
    Chart,
    /// A chart's `helm.sh/images` annotation, read besides its rendered output.
    ChartAnnotation,
    /// A chart's annotations or values, read because rendering failed (may be incomplete
    /// or hold images the chart does not use by default).
    ChartFallback,
    /// An image carried by an image archive (loaded, not pulled).
    Archive,
}

/// The Kubernetes object an image field belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ObjectRef {
    /// `kind` (empty when the document has none).
    pub kind: String,
    /// `metadata.name` (empty when it has none).
    pub name: String,
    /// `metadata.namespace`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One place an image was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// Which kind of source.
    pub kind: SourceKind,
    /// The file: a context path, a path outside the context (image lists given as options),
    /// or a chart's template name (`chart/templates/x.yaml`).
    pub file: String,
    /// 1-based line of the value, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 0-based index of the YAML document in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// The object holding the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// Path of the field in the document (`spec.template.spec.containers[0].image`), or the
    /// archive entry or annotation that named the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The chart (its Chart.yaml name) the image belongs to, for chart sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
}

impl Provenance {
    /// A place in `file`, with nothing else known yet.
    pub fn new(kind: SourceKind, file: impl Into<String>) -> Self {
        Provenance {
            kind,
            file: file.into(),
            line: None,
            document: None,
            object: None,
            path: None,
            chart: None,
        }
    }
}

/// One image the build context needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredImage {
    /// The normalized reference.
    pub reference: Reference,
    /// Every place it was found, in scan order.
    pub sources: Vec<Provenance>,
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// An image field holds a template or parameter expression, not a reference.
    Unresolved,
    /// An image field or list line is not a valid reference (or not a string).
    InvalidReference,
    /// A file is not valid YAML or exceeds the parser's limits.
    InvalidYaml,
    /// A file could not be read.
    Unreadable,
    /// A `.tmpl` file could not be rendered.
    Template,
    /// A chart could not be loaded or one of its templates failed to render.
    Chart,
    /// An image archive could not be listed.
    Archive,
    /// An ignore-list entry is invalid.
    IgnoreList,
}

/// Something the scan could not use, naming the file and line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// The file concerned (context path, option path or chart template).
    pub file: String,
    /// 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The offending value, when there is one (`$(params.BUILDER_IMAGE)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// An image an ignore list removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredImage {
    /// The removed reference.
    pub reference: Reference,
    /// The ignore entry that matched, as written.
    pub pattern: String,
    /// Where that entry is (`file:line`).
    pub origin: String,
}

/// The result of a scan, deterministic for the same inputs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ScanReport {
    /// Images, sorted by normalized reference text (byte order), each listed once.
    pub images: Vec<DiscoveredImage>,
    /// Warnings in scan order.
    pub warnings: Vec<Warning>,
    /// Charts whose images come (partly) from the fallback, because rendering failed.
    pub partial_charts: Vec<String>,
    /// Images removed by ignore lists, sorted like `images`.
    pub ignored: Vec<IgnoredImage>,
}

impl ScanReport {
    /// The normalized references, in report order.
    pub fn references(&self) -> Vec<String> {
        self.images
            .iter()
            .map(|i| i.reference.to_string())
            .collect()
    }
}

/// Gathers hits and warnings from the sources.
#[derive(Debug, Default)]
pub struct Collector {
    images: BTreeMap<String, DiscoveredImage>,
    warnings: Vec<Warning>,
    partial_charts: Vec<String>,
    /// Names and context paths of the charts scanned (what values can be given for).
    charts: Vec<String>,
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Self {
        Collector::default()
    }

    /// Records an image found at `source`.
    pub fn image(&mut self, reference: Reference, source: Provenance) {
        let entry = self
            .images
            .entry(reference.to_string())
            .or_insert_with(|| DiscoveredImage {
                reference,
                sources: Vec::new(),
            });
        if !entry.sources.contains(&source) {
            entry.sources.push(source);
        }
    }

    /// How many distinct images were recorded.
    pub fn image_count(&self) -> usize {
        self.images.len()
    }

    /// Records a warning.
    pub fn warn(
        &mut self,
        kind: WarningKind,
        file: &str,
        line: Option<usize>,
        message: impl Into<String>,
    ) {
        self.warnings.push(Warning {
            kind,
            file: file.to_owned(),
            line,
            value: None,
            message: message.into(),
        });
    }

    /// Records a finished warning.
    pub fn push_warning(&mut self, warning: Warning) {
        self.warnings.push(warning);
    }

    /// Records that a chart was scanned only partially.
    pub fn partial_chart(&mut self, chart: &str) {
        if !self.partial_charts.iter().any(|c| c == chart) {
            self.partial_charts.push(chart.to_owned());
        }
    }

    /// Records that a chart with this name, at this context path, was scanned.
    pub fn chart_seen(&mut self, name: &str, path: &str) {
        self.charts.extend([name.to_owned(), path.to_owned()]);
    }

    /// Whether a chart of this name or context path was scanned.
    pub fn has_chart(&self, name_or_path: &str) -> bool {
        self.charts.iter().any(|chart| chart == name_or_path)
    }

    /// Appends everything another collector gathered.
    pub fn merge(&mut self, other: Collector) {
        for (_, image) in other.images {
            for source in image.sources {
                self.image(image.reference.clone(), source);
            }
        }
        self.warnings.extend(other.warnings);
        for chart in other.partial_charts {
            self.partial_chart(&chart);
        }
        self.charts.extend(other.charts);
    }

    /// The report: images sorted by their text (a `BTreeMap` of `String` keys orders bytes).
    pub fn finish(self) -> ScanReport {
        ScanReport {
            images: self.images.into_values().collect(),
            warnings: self.warnings,
            partial_charts: self.partial_charts,
            ignored: Vec::new(),
        }
    }
}
