//! The build itself: plan the Kubefile, resolve the base, turn each step into a layer (or take
//! it from the build cache), cache the container images the rootfs needs as one layer per
//! image, and store the image (one per platform, under an index when there are several).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use image::Digest;
use image::layer::{LayerEntry, LayerOptions};
use image::manifest::{Descriptor, DescriptorPlatform, Index, OCI_INDEX, OCI_MANIFEST};
use image::progress::{BlobOutcome, Progress};
use image::registry::RegistryClient;
use image::store::Store;
use kubefile::SourceFile;
use kubefile::context::DirContext;
use kubefile::plan::{
    BuildArgs, BuildPlan, CopyStep, Location, Origin, PlanOptions, Platform, Source, Step,
};
use serde::Serialize;

use crate::base::{self, SourceImage};
use crate::cache::{BuildCache, CachedLayer, KeyBuilder};
use crate::cache_images::{self, ImageLayerPlan, Resolution};
use crate::dockerignore::DockerIgnore;
use crate::error::BuildError;
use crate::metadata::{self, BuiltLayer, ContainerImage};
use crate::options::{BuildMode, BuildOptions, PullPolicy};
use crate::progress::{BuildProgress, StepInfo, StepOutcome};
use crate::run::RunRequest;
use crate::sources::{self, SourceRoot};
use crate::storage_view;
use crate::view;

/// What a build produced.
#[derive(Debug, Clone, Serialize)]
pub struct BuildOutput {
    /// The stored image: a manifest, or an index of one manifest per platform.
    pub descriptor: Descriptor,
    /// The names it got.
    pub tags: Vec<String>,
    /// One entry per platform.
    pub platforms: Vec<PlatformOutput>,
}

/// The image built for one platform.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformOutput {
    /// The platform.
    pub platform: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// Size of the config and all layers, in bytes.
    pub size: u64,
    /// Number of layers (base layers included).
    pub layers: usize,
    /// Steps whose layer came from the build cache.
    pub cached_steps: usize,
    /// Steps that ran.
    pub built_steps: usize,
    /// The container images the image carries.
    pub images: Vec<String>,
}

/// Builds the Kubefile `file` (already read) as `options` say, into `store`.
pub async fn build(
    store: &Store,
    client: &RegistryClient,
    file: &SourceFile,
    options: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<BuildOutput, BuildError> {
    if !options.context.is_dir() {
        return Err(BuildError::Io {
            what: format!("reading the build context {}", options.context.display()),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    let _lock = store.lock_shared()?;
    let cache = BuildCache::open(store, &options.context).map_err(BuildError::io(format!(
        "opening the build cache of {}",
        store.root().display()
    )))?;
    let ignore =
        DockerIgnore::load(&options.context, &options.kubefile).map_err(|e| BuildError::Io {
            what: format!("reading the .dockerignore of {}", options.context.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
    let platforms = options.target_platforms();
    let builder = Builder {
        store,
        client,
        file,
        options,
        progress,
        cache: &cache,
        ignore: &ignore,
        show_platform: platforms.len() > 1,
    };
    let mut outputs = Vec::new();
    let mut manifests = Vec::new();
    for platform in &platforms {
        let (descriptor, output) = builder.build_platform(platform).await?;
        manifests.push(descriptor);
        outputs.push(output);
    }
    cache.save().map_err(BuildError::io(format!(
        "saving the build cache in {}",
        cache.dir().display()
    )))?;
    let descriptor = if manifests.len() == 1 {
        manifests.remove(0)
    } else {
        let index = Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_owned()),
            manifests,
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&index).map_err(|e| BuildError::Io {
            what: "writing the image index".into(),
            source: std::io::Error::other(e),
        })?;
        store.write_blob(&bytes)?;
        Descriptor::of(OCI_INDEX, &bytes)
    };
    for tag in &options.tags {
        store.tag(tag, &descriptor, None)?;
    }
    Ok(BuildOutput {
        descriptor,
        tags: options.tags.iter().map(ToString::to_string).collect(),
        platforms: outputs,
    })
}

/// What every platform's build shares.
struct Builder<'a> {
    store: &'a Store,
    client: &'a RegistryClient,
    file: &'a SourceFile,
    options: &'a BuildOptions,
    progress: &'a dyn BuildProgress,
    cache: &'a BuildCache,
    ignore: &'a DockerIgnore,
    show_platform: bool,
}

/// How many steps were taken from the cache and how many ran.
#[derive(Default)]
struct StepCounts {
    cached: usize,
    built: usize,
}

impl StepCounts {
    fn count(&mut self, outcome: StepOutcome) {
        match outcome {
            StepOutcome::Cached => self.cached += 1,
            StepOutcome::Built { .. } | StepOutcome::Empty => self.built += 1,
        }
    }
}

/// The layers of the image so far, and the cache key of the state they make.
struct Layers {
    built: Vec<BuiltLayer>,
    /// Blob files of every layer, base first.
    files: Vec<PathBuf>,
    key: Digest,
}

impl Builder<'_> {
    async fn build_platform(
        &self,
        platform: &Platform,
    ) -> Result<(Descriptor, PlatformOutput), BuildError> {
        let first = self.plan(platform, None)?;
        let base = match &first.base.image {
            None => SourceImage::scratch(platform),
            Some(image) => {
                let base_platform = first.base.platform.as_ref().unwrap_or(platform);
                self.resolve(image, base_platform, first.base.location)
                    .await?
            }
        };
        let plan = self.plan(platform, Some(&base))?;
        let mut start = KeyBuilder::new(&Digest::of(b""), "FROM");
        start.field(
            base.manifest_digest
                .as_ref()
                .map_or_else(|| "scratch".to_owned(), ToString::to_string)
                .as_bytes(),
        );
        start.field(platform.to_string().as_bytes());
        start
            .field(format!("{:?} {}", self.options.compression, self.options.timestamp).as_bytes());
        let mut layers = Layers {
            built: Vec::new(),
            files: self.blob_files(base.layers()),
            key: start.finish(),
        };
        let caching = self.options.build_mode == BuildMode::All;
        let total = plan.steps.len() + usize::from(caching);
        let mut counts = StepCounts::default();
        for (number, step) in plan.steps.iter().enumerate() {
            let info = self.step_info(
                platform,
                number + 1,
                total,
                &self.instruction_text(step.location()),
            );
            self.progress.step_started(&info);
            let outcome = match step {
                Step::Copy(copy) => self.copy_step(copy, platform, &mut layers).await?,
                Step::Run(run) => self.run_step(run, &info.text, &mut layers)?,
            };
            counts.count(outcome);
            self.progress.step_finished(&info, outcome);
        }
        let mut container_images = base.container_images.clone();
        if caching {
            let info = self.step_info(platform, total, total, "cache container images");
            self.progress.step_started(&info);
            let (outcome, images) = self.cache_images(&plan, platform, &mut layers).await?;
            container_images.extend(images);
            container_images.sort();
            container_images.dedup();
            counts.count(outcome);
            self.progress.step_finished(&info, outcome);
        }
        let (cached_steps, built_steps) = (counts.cached, counts.built);
        let config = metadata::image_config(
            &base.config,
            &plan,
            &self.options.labels,
            &container_images,
            &layers.built,
            self.options.timestamp,
        );
        let config_bytes = to_json(&config)?;
        self.store.write_blob(&config_bytes)?;
        let all_layers: Vec<Descriptor> = base
            .layers()
            .iter()
            .cloned()
            .chain(layers.built.iter().map(|l| l.descriptor.clone()))
            .collect();
        let manifest = metadata::image_manifest(
            &config_bytes,
            all_layers,
            &plan.extension,
            &container_images,
            &self.options.annotations,
        );
        let manifest_bytes = to_json(&manifest)?;
        self.store.write_blob(&manifest_bytes)?;
        let mut descriptor = Descriptor::of(OCI_MANIFEST, &manifest_bytes);
        if self.show_platform {
            descriptor.platform = Some(DescriptorPlatform::from(platform));
        }
        let output = PlatformOutput {
            platform: platform.to_string(),
            digest: descriptor.digest.clone(),
            size: config_bytes.len() as u64 + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
            layers: manifest.layers.len(),
            cached_steps,
            built_steps,
            images: container_images.iter().map(|i| i.image.clone()).collect(),
        };
        Ok((descriptor, output))
    }

    /// The image an instruction at `location` names, from the store or its registry.
    async fn resolve(
        &self,
        image: &str,
        platform: &Platform,
        location: Location,
    ) -> Result<SourceImage, BuildError> {
        base::resolve(
            self.store,
            self.client,
            image,
            platform,
            self.options.pull,
            self.progress.transfers(),
        )
        .await
        .map_err(|e| self.at(location, &e.to_string()))
    }

    /// Plans the Kubefile for `platform`, knowing the base image once it is resolved.
    fn plan(
        &self,
        platform: &Platform,
        base: Option<&SourceImage>,
    ) -> Result<BuildPlan, BuildError> {
        let context = DirContext::new(&self.options.context);
        let mut plan_options = PlanOptions::new(&context);
        plan_options.build_args =
            BuildArgs::from_cli(&self.options.build_args, &|name| std::env::var(name).ok())
                .map_err(BuildError::Kubefile)?;
        plan_options.target_platform = platform.clone();
        plan_options.image_type = self.options.image_type;
        plan_options.base = base.map(SourceImage::plan_base);
        let (plan, warnings) = kubefile::plan_for_build(self.file, &plan_options);
        if base.is_some() || plan.is_err() {
            for warning in &warnings {
                self.progress.message(warning);
            }
        }
        plan.map_err(BuildError::Kubefile)
    }

    async fn copy_step(
        &self,
        step: &CopyStep,
        platform: &Platform,
        layers: &mut Layers,
    ) -> Result<StepOutcome, BuildError> {
        let instruction = step_json(step)?;
        let text = self.instruction_text(step.location);
        let scratch = self.scratch_dir()?;
        let source_image = match &step.origin {
            Origin::Image(image) => Some(self.resolve(image, platform, step.location).await?),
            Origin::Context => None,
        };
        // Some keys are known before the files are gathered: a copy out of an image (by the
        // image's digest) and downloads pinned by checksum. A cached layer then spares the
        // unpacking or the download.
        let pinned_downloads = step.sources.iter().all(|source| {
            matches!(
                source,
                Source::Url {
                    checksum: Some(_),
                    ..
                }
            )
        });
        let early_key = match &source_image {
            Some(source) => {
                let mut key = KeyBuilder::new(&layers.key, &instruction);
                key.field(
                    source
                        .manifest_digest
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                        .as_bytes(),
                );
                Some(key.finish())
            }
            None => pinned_downloads.then(|| KeyBuilder::new(&layers.key, &instruction).finish()),
        };
        if let Some(key) = &early_key
            && let Some(outcome) = self.reuse(key, &text, layers)
        {
            return Ok(outcome);
        }
        let image_root = scratch.path().join("from");
        let root = match &source_image {
            Some(source) => {
                crate::rootfs::materialize(&self.blob_files(source.layers()), &image_root)
                    .map_err(|e| self.at(step.location, &e.to_string()))?;
                SourceRoot::Image { dir: &image_root }
            }
            None => SourceRoot::Context {
                dir: &self.options.context,
                ignore: self.ignore,
            },
        };
        let copied = sources::copy_entries(step, root, scratch.path())
            .await
            .map_err(|e| self.at(step.location, &e.to_string()))?;
        if let Some(key) = early_key {
            return self.write_new_layer(key, &text, copied.entries, &self.layer_options(), layers);
        }
        let key = self
            .cache
            .entries_key(&layers.key, &instruction, &copied.entries)
            .map_err(|e| self.at(step.location, &format!("reading the files to copy: {e}")))?;
        self.add_layer(key, &text, copied.entries, &self.layer_options(), layers)
    }

    fn run_step(
        &self,
        step: &kubefile::plan::RunStep,
        text: &str,
        layers: &mut Layers,
    ) -> Result<StepOutcome, BuildError> {
        let key = KeyBuilder::new(&layers.key, &step_json(step)?).finish();
        if let Some(outcome) = self.reuse(&key, text, layers) {
            return Ok(outcome);
        }
        let scratch = self.scratch_dir()?;
        let mut log = |line: &str| self.progress.output(line);
        let mut output = crate::run::run_step(RunRequest {
            step,
            layers: &layers.files,
            isolation: self.options.isolation,
            scratch: scratch.path(),
            log: &mut log,
        })
        .map_err(|e| self.at(step.location, &e.to_string()))?;
        let entries = std::mem::take(&mut output.entries);
        self.add_layer(key, text, entries, &self.layer_options(), layers)
    }

    /// Scans the merged rootfs and caches every image it needs, one layer per image.
    async fn cache_images(
        &self,
        plan: &BuildPlan,
        platform: &Platform,
        layers: &mut Layers,
    ) -> Result<(StepOutcome, Vec<ContainerImage>), BuildError> {
        let view = view::prepare(
            self.cache.dir(),
            self.cache.work_dir(),
            &layers.key,
            &layers.files,
        )?;
        let mut scan_options = self.options.scan.clone();
        scan_options.env.extend(
            plan.config
                .env
                .iter()
                .map(|v| (v.name.clone(), v.value.clone())),
        );
        let sealerignore = self.options.context.join(".sealerignore");
        if sealerignore.is_file() {
            scan_options
                .ignored_image_lists
                .push(scan::ListSource::File(sealerignore));
        }
        let report = scan::scan(&DirContext::new(&view), &scan_options);
        for warning in &report.warnings {
            self.progress.message(&format!("warning: {warning}"));
        }
        let cache_images::ScannedImages {
            pulled,
            archives,
            listed,
        } = cache_images::ScannedImages::new(&report, platform);
        let archives: Vec<PathBuf> = archives.iter().map(|path| view.join(path)).collect();
        let mut index = storage_view::storage_index(&DirContext::new(&view))?;
        let transfers: Arc<dyn Progress> = self.progress.transfers();
        let platform_name = platform.to_string();
        let refresh = self.options.pull == PullPolicy::Always;
        let resolution = Resolution {
            refresh,
            known: if refresh {
                BTreeMap::new()
            } else {
                pulled
                    .iter()
                    .filter_map(|r| Some((r.clone(), self.cache.resolved(r, &platform_name)?)))
                    .collect()
            },
        };
        let mut plans = cache_images::plan_image_layers(
            self.client,
            self.store,
            &pulled,
            platform,
            &mut index,
            &resolution,
            transfers.as_ref(),
        )
        .await?;
        for plan in &plans {
            self.cache
                .put_resolved(&plan.reference, &platform_name, &plan.documents)
                .map_err(BuildError::io(format!(
                    "writing the build cache in {}",
                    self.cache.dir().display()
                )))?;
        }
        plans.extend(cache_images::plan_archive_layers(
            self.store, &archives, &mut index,
        )?);
        // An image's layer depends only on its entries (which the lower layers' registry
        // content decided), never on the rest of the rootfs, so it stays cached when other
        // steps change. Its files always have time 0: a layer that changed with
        // SOURCE_DATE_EPOCH would defeat registries' deduplication across versions.
        let options = LayerOptions {
            compression: image::layer::Compression::None,
            mtime: 0,
            ..LayerOptions::default()
        };
        let keyed: Vec<(Digest, &ImageLayerPlan)> = plans
            .iter()
            .map(|plan| {
                let mut key = KeyBuilder::new(&Digest::of(b""), "cache image");
                key.field(plan.key.to_string().as_bytes());
                (key.finish(), plan)
            })
            .collect();
        let cached: Vec<Option<CachedLayer>> =
            keyed.iter().map(|(key, _)| self.cached(key)).collect();
        let missing: Vec<ImageLayerPlan> = keyed
            .iter()
            .zip(&cached)
            .filter(|(_, hit)| hit.is_none())
            .map(|((_, plan), _)| (*plan).clone())
            .collect();
        cache_images::fetch_image_layers(self.client, self.store, &missing, transfers).await?;
        let mut written = 0;
        for ((key, plan), hit) in keyed.into_iter().zip(cached) {
            let text = format!("cache {}", plan.reference);
            if let Some(hit) = hit {
                self.push_layer(&key, &text, &hit, layers);
                continue;
            }
            let entries = cache_images::image_layer_entries(self.store, plan)?;
            if let StepOutcome::Built { layer_size } =
                self.write_new_layer(key, &text, entries, &options, layers)?
            {
                written += layer_size;
            }
        }
        let outcome = if written > 0 {
            StepOutcome::Built {
                layer_size: written,
            }
        } else if plans.is_empty() {
            StepOutcome::Empty
        } else {
            StepOutcome::Cached
        };
        Ok((outcome, listed))
    }

    /// The layer the cache holds for `key`, unless `--no-cache` says not to look.
    fn cached(&self, key: &Digest) -> Option<CachedLayer> {
        if self.options.no_cache {
            return None;
        }
        self.cache.get(key, self.store)
    }

    /// Takes the layer of `key` from the cache, when there and allowed.
    fn reuse(&self, key: &Digest, text: &str, layers: &mut Layers) -> Option<StepOutcome> {
        let cached = self.cached(key)?;
        self.push_layer(key, text, &cached, layers);
        Some(StepOutcome::Cached)
    }

    /// Writes `entries` as the layer of `key` (or reuses the cached one).
    fn add_layer(
        &self,
        key: Digest,
        text: &str,
        entries: Vec<LayerEntry>,
        options: &LayerOptions,
        layers: &mut Layers,
    ) -> Result<StepOutcome, BuildError> {
        if let Some(outcome) = self.reuse(&key, text, layers) {
            return Ok(outcome);
        }
        self.write_new_layer(key, text, entries, options, layers)
    }

    /// Writes `entries` as the layer of `key`, which the cache lacks, and records it there.
    fn write_new_layer(
        &self,
        key: Digest,
        text: &str,
        entries: Vec<LayerEntry>,
        options: &LayerOptions,
        layers: &mut Layers,
    ) -> Result<StepOutcome, BuildError> {
        if entries.is_empty() {
            layers.key = key;
            return Ok(StepOutcome::Empty);
        }
        let transfers = self.progress.transfers();
        transfers.blob_started(&key, image::layer::content_size(&entries), 0);
        let written = self.store.write_layer(entries, options, &mut |bytes| {
            transfers.blob_advanced(&key, bytes);
        })?;
        transfers.blob_finished(&key, BlobOutcome::Written);
        let cached = CachedLayer {
            digest: written.digest,
            diff_id: written.diff_id,
            size: written.size,
            media_type: written.media_type.to_owned(),
        };
        self.cache
            .put(&key, &cached)
            .map_err(BuildError::io(format!(
                "writing the build cache in {}",
                self.cache.dir().display()
            )))?;
        self.push_layer(&key, text, &cached, layers);
        Ok(StepOutcome::Built {
            layer_size: cached.size,
        })
    }

    fn push_layer(&self, key: &Digest, text: &str, cached: &CachedLayer, layers: &mut Layers) {
        layers.files.push(self.store.blob_path(&cached.digest));
        layers.built.push(BuiltLayer {
            descriptor: Descriptor {
                media_type: cached.media_type.clone(),
                digest: cached.digest.clone(),
                size: cached.size,
                platform: None,
                annotations: BTreeMap::new(),
                urls: Vec::new(),
            },
            diff_id: cached.diff_id.clone(),
            created_by: text.to_owned(),
        });
        // The state after this step is what the layer holds, not only what made it: a step
        // run again (--no-cache) that gives other content gives another state.
        let mut state = KeyBuilder::new(key, "layer");
        state.field(cached.diff_id.to_string().as_bytes());
        layers.key = state.finish();
    }

    fn blob_files(&self, layers: &[Descriptor]) -> Vec<PathBuf> {
        layers
            .iter()
            .map(|layer| self.store.blob_path(&layer.digest))
            .collect()
    }

    fn layer_options(&self) -> LayerOptions {
        LayerOptions {
            compression: self.options.compression,
            mtime: self.options.timestamp,
            ..LayerOptions::default()
        }
    }

    fn scratch_dir(&self) -> Result<tempfile::TempDir, BuildError> {
        tempfile::Builder::new()
            .prefix("step-")
            .tempdir_in(self.cache.work_dir())
            .map_err(BuildError::io(format!(
                "creating a work directory in {}",
                self.cache.dir().display()
            )))
    }

    fn step_info(&self, platform: &Platform, number: usize, total: usize, text: &str) -> StepInfo {
        StepInfo {
            platform: if self.show_platform {
                platform.to_string()
            } else {
                String::new()
            },
            number,
            total,
            text: text.to_owned(),
        }
    }

    /// The first line of the instruction at `location`, for progress and history, without
    /// the secrets a URL in it may carry.
    fn instruction_text(&self, location: Location) -> String {
        crate::redact::instruction_text(self.file.line_text(location.line))
    }

    /// An error of the instruction at `location`.
    fn at(&self, location: Location, message: &str) -> BuildError {
        BuildError::Step {
            kubefile: self.file.name().to_owned(),
            line: location.line,
            column: location.column,
            instruction: self.instruction_text(location),
            message: without_site(message).to_owned(),
        }
    }
}

/// `message` without the site the copy and run errors start with (`COPY at line 2:1: `,
/// `RUN at line 2:1 (`cmd`) `): the build error names the instruction and its place itself.
fn without_site(message: &str) -> &str {
    let Some((_, after)) = message.split_once(" at line ") else {
        return message;
    };
    let position_end = after
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(after.len());
    if position_end == 0 || message.len() - after.len() > 16 {
        return message;
    }
    let mut rest = &after[position_end..];
    if let Some(command) = rest.strip_prefix(" (`")
        && let Some(end) = command.find("`)")
    {
        rest = &command[end + 2..];
    }
    rest.strip_prefix(": ")
        .or_else(|| rest.strip_prefix(' '))
        .unwrap_or(rest)
}

/// A step as cache keys see it: everything but where it stands in the Kubefile.
fn step_json(step: &impl Serialize) -> Result<String, BuildError> {
    let mut value = serde_json::to_value(step).map_err(|e| BuildError::Io {
        what: "describing a step".into(),
        source: std::io::Error::other(e),
    })?;
    if let Some(object) = value.as_object_mut() {
        object.remove("location");
    }
    Ok(value.to_string())
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, BuildError> {
    serde_json::to_vec(value).map_err(|e| BuildError::Io {
        what: "writing image metadata".into(),
        source: std::io::Error::other(e),
    })
}
