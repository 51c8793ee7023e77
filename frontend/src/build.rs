//! The build in gateway mode, as the embedded engine builds (`engine::build`): plan the
//! Kubefile over the client's context, resolve the base, lower each step to LLB, scan the
//! result for container images, add one fetch step and one storage step per image, and hand
//! back the rootfs with its image config.

use std::collections::BTreeMap;
use std::path::PathBuf;

use engine::base::SourceImage;
use engine::dockerignore::DockerIgnore;
use engine::fetch_to_dir::{BLOBS_DIR, DOCUMENTS_FILE, FetchedImage, FetchedImages};
use engine::metadata::ContainerImage;
use engine::options::BuildMode;
use image::distribution::ImageDocuments;
use image::manifest::ImageConfig;
use image::reference::Reference;
use kubefile::SourceFile;
use kubefile::context::{ContextView, EntryKind};
use kubefile::plan::{BuildArgs, BuildPlan, Location, PlanOptions, Platform, Step};
use llb::exec::NetMode;
use llb::lower::cache_images::{FetchInputs, FetchSource, fetch_step, storage_step};
use llb::lower::copy::{CopyInputs, copy_step};
use llb::lower::run::{MOUNT_POINTS, RUN_IMAGE_ARG, RunInputs, RunRoot, run_step};
use llb::lower::{plan_platform, platform as pb_platform, timestamp_nanos};
use llb::source::{LocalOpts, ResolveMode};
use llb::{Graph, Output, Vertex, pb};
use tokio::runtime::Handle;

use crate::BuildFile;
use crate::error::FrontendError;
use crate::gateway::{EVALUATE_CAP, Gateway, RefId};
use crate::opts::{FrontendOptions, NetworkMode};
use crate::scan_inputs::{SCAN_OPTION, ScanInputs};
use crate::view::GatewayView;

/// The build arg listing registry mirrors for the fetch steps (`SOURCE=MIRROR,...`), as
/// `sealer-build --registry-mirror` takes them.
pub const REGISTRY_MIRRORS_ARG: &str = "SEALER_REGISTRY_MIRRORS";
/// The build arg choosing the image type (`kube-installer`, `app-installer`), as
/// `sealer-build build --type`.
pub const IMAGE_TYPE_ARG: &str = "SEALER_IMAGE_TYPE";
/// The build arg choosing the build mode (`all`, or `lite` to cache no images), as
/// `sealer-build build --build-mode`.
pub const BUILD_MODE_ARG: &str = "SEALER_BUILD_MODE";
/// The build arg fixing file and image times, as the variable does for `sealer-build`.
const SOURCE_DATE_EPOCH_ARG: &str = "SOURCE_DATE_EPOCH";
/// Build args the frontend reads itself; they are not passed to the Kubefile.
const FRONTEND_ARGS: [&str; 4] = [
    REGISTRY_MIRRORS_ARG,
    IMAGE_TYPE_ARG,
    BUILD_MODE_ARG,
    RUN_IMAGE_ARG,
];
/// The metadata key of the image config in a gateway result.
const IMAGE_CONFIG_KEY: &str = "containerimage.config";
/// The ignore list read from the context root.
const SEALERIGNORE: &str = ".sealerignore";

/// The image config and rootfs of a built Kubefile.
pub struct Built {
    /// The solved rootfs.
    pub rootfs: RefId,
    /// The gateway result metadata (the image config).
    pub metadata: Vec<(String, Vec<u8>)>,
}

/// A resolved image: its state and config.
struct Resolved {
    state: Output,
    source: SourceImage,
}

/// One build.
struct Build<'a> {
    gateway: &'a Gateway,
    options: &'a FrontendOptions,
    caps: &'a llb::caps::Caps,
    gateway_caps: &'a llb::caps::Caps,
    file: SourceFile,
    /// The platform of the image.
    platform: Platform,
    /// The same, for ops.
    target: pb::Platform,
    /// The platform the daemon runs steps on (RUN in a run image, fetches).
    worker_platform: Platform,
    /// The same, for ops.
    worker: pb::Platform,
    graph: Graph,
}

/// Builds `build_file` with `options` on `gateway`.
pub async fn build(
    gateway: &Gateway,
    options: &FrontendOptions,
    pong: &crate::gateway::Pong,
    build_file: BuildFile,
) -> Result<Built, FrontendError> {
    if let Some(target) = options.target.as_deref().filter(|t| !t.is_empty()) {
        return Err(FrontendError::Build(format!(
            "--target {target}: a Kubefile has a single stage; build without --target"
        )));
    }
    let worker = pong
        .worker_platforms
        .first()
        .cloned()
        .unwrap_or_else(|| pb_platform(&Platform::host()));
    let worker_platform = plan_platform(&worker);
    let platform = options
        .platform
        .clone()
        .unwrap_or_else(|| worker_platform.clone());
    let mut build = Build {
        gateway,
        options,
        caps: &pong.llb_caps,
        gateway_caps: &pong.gateway_caps,
        file: SourceFile::new(build_file.name.clone(), build_file.text.clone()),
        target: pb_platform(&platform),
        platform,
        worker_platform,
        worker,
        graph: Graph::new(),
    };
    let dockerignore = match build_file.dockerignore {
        Some(text) => Some((format!("{}.dockerignore", build_file.name), text)),
        None => build
            .context_dockerignore()
            .await?
            .map(|text| (".dockerignore".to_owned(), text)),
    };
    let exclude = match dockerignore {
        Some((name, text)) => DockerIgnore::parse(&text)
            .map_err(|e| FrontendError::Build(format!("{name}: {e}")))?
            .patterns()
            .to_vec(),
        None => Vec::new(),
    };
    build.run(exclude).await
}

impl Build<'_> {
    async fn run(&mut self, exclude: Vec<String>) -> Result<Built, FrontendError> {
        let context = self.local(
            &self.options.context_local.clone(),
            LocalOpts {
                exclude,
                shared_key_hint: self.options.context_local.clone(),
                ..LocalOpts::default()
            },
            "[internal] load build context",
        );
        let context_ref = self.solve(&context).await?;
        let first = self.plan(&context_ref, None).await?;
        let base = match &first.base.image {
            None => None,
            Some(image) => {
                let platform = first
                    .base
                    .platform
                    .clone()
                    .unwrap_or_else(|| self.platform.clone());
                Some(self.resolve(image, &platform, first.base.location).await?)
            }
        };
        let base_source = base.as_ref().map_or_else(
            || SourceImage::scratch(&self.platform),
            |b| b.source.clone(),
        );
        let plan = self.plan(&context_ref, Some(&base_source)).await?;

        let mut images = BTreeMap::new();
        for step in &plan.steps {
            if let Step::Copy(copy) = step
                && let kubefile::plan::Origin::Image(image) = &copy.origin
                && !images.contains_key(image)
            {
                let resolved = self
                    .resolve(image, &self.platform.clone(), copy.location)
                    .await?;
                images.insert(image.clone(), resolved.state);
            }
        }
        let run_image = match self
            .options
            .build_args
            .get(RUN_IMAGE_ARG)
            .filter(|i| !i.is_empty())
        {
            Some(image) if plan.steps.iter().any(|s| matches!(s, Step::Run(_))) => {
                let location = plan
                    .steps
                    .iter()
                    .find(|s| matches!(s, Step::Run(_)))
                    .map(Step::location);
                Some(
                    self.resolve(
                        image,
                        &self.worker_platform.clone(),
                        location.unwrap_or(plan.base.location),
                    )
                    .await?,
                )
            }
            _ => None,
        };

        let epoch = self.source_date_epoch()?;
        let timestamp = timestamp_nanos(epoch);
        let extra_hosts = self.extra_hosts();
        let mut state = base.as_ref().map(|b| b.state.clone());
        let total = plan.steps.len();
        for (number, step) in plan.steps.iter().enumerate() {
            let name = format!(
                "[{}/{total}] {}",
                number + 1,
                self.instruction_text(step.location())
            );
            state = match step {
                Step::Copy(copy) => {
                    let inputs = CopyInputs {
                        context: &context,
                        images: &images,
                        platform: &self.target,
                        timestamp,
                        ignore_cache: self.options.no_cache,
                    };
                    copy_step(&mut self.graph, state.as_ref(), copy, &inputs, &name)
                        .map_err(|e| self.at(copy.location, &e.to_string()))?
                }
                Step::Run(run) => {
                    // In a run image, commands run natively, as the engine runs them on
                    // the build host; in the rootfs, they need its platform.
                    let inputs = RunInputs {
                        platform: if run_image.is_some() {
                            &self.worker
                        } else {
                            &self.target
                        },
                        default_network: match self.options.network {
                            NetworkMode::Sandbox => NetMode::Unset,
                            NetworkMode::Host => NetMode::Host,
                            NetworkMode::None => NetMode::None,
                        },
                        ignore_cache: self.options.no_cache,
                        extra_hosts: &extra_hosts,
                    };
                    let absent;
                    let root = if let Some(image) = &run_image {
                        RunRoot::Image {
                            image: &image.state,
                            path: image
                                .source
                                .config
                                .config
                                .env
                                .iter()
                                .find_map(|e| e.strip_prefix("PATH=")),
                        }
                    } else {
                        absent = self.absent_mount_points(state.as_ref()).await?;
                        RunRoot::Rootfs {
                            absent_mount_points: &absent,
                        }
                    };
                    Some(run_step(
                        &mut self.graph,
                        state.as_ref(),
                        run,
                        root,
                        &inputs,
                        &name,
                    ))
                }
            };
            if let Some(state) = &state {
                self.evaluate(state, step.location()).await?;
            }
        }

        let mut container_images = base_source.container_images.clone();
        if self.build_mode()? == BuildMode::All {
            let (new_state, cached) = self.cache_images(&plan, &context_ref, state).await?;
            state = new_state;
            container_images.extend(cached);
            container_images.sort();
            container_images.dedup();
        }
        let rootfs = match &state {
            Some(state) => self.solve(state).await?,
            None => RefId::new(""),
        };
        let config = engine::metadata::image_config(
            &base_source.config,
            &plan,
            &self.options.labels,
            &container_images,
            &[],
            epoch,
        );
        let bytes = serde_json::to_vec(&config)
            .map_err(|e| FrontendError::Build(format!("writing the image config: {e}")))?;
        Ok(Built {
            rootfs,
            metadata: vec![(IMAGE_CONFIG_KEY.to_owned(), bytes)],
        })
    }

    /// Scans the rootfs, then fetches and stores every image it names that its registry
    /// storage lacks; returns the new rootfs and the image list entries.
    async fn cache_images(
        &mut self,
        plan: &BuildPlan,
        context: &RefId,
        state: Option<Output>,
    ) -> Result<(Option<Output>, Vec<ContainerImage>), FrontendError> {
        let Some(rootfs) = state else {
            return Ok((None, Vec::new()));
        };
        let rootfs_ref = self.solve(&rootfs).await?;
        let mut scan_options = scan::ScanOptions::default();
        scan_options.env.extend(
            plan.config
                .env
                .iter()
                .map(|v| (v.name.clone(), v.value.clone())),
        );
        let options = self.options;
        if let Some(inputs) = &options.scan_inputs {
            let files = self.read_scan_inputs(inputs).await?;
            inputs
                .add_to(&mut scan_options, &files)
                .map_err(FrontendError::Build)?;
        }
        let gateway = self.gateway.clone();
        let context = context.clone();
        let platform = self.platform.clone();
        let (report, mut index, scanned) = tokio::task::spawn_blocking(move || {
            let runtime = Handle::current();
            let context_view = GatewayView::new(gateway.clone(), context, runtime.clone());
            if context_view.kind(SEALERIGNORE) == Some(EntryKind::File) {
                let text = context_view
                    .read(SEALERIGNORE)
                    .map_err(|e| FrontendError::Build(format!("{SEALERIGNORE}: {e}")))?;
                scan_options
                    .ignored_image_lists
                    .push(scan::ListSource::Text {
                        name: SEALERIGNORE.to_owned(),
                        text: String::from_utf8_lossy(&text).into_owned(),
                    });
            }
            let view = GatewayView::new(gateway, rootfs_ref, runtime);
            let report = scan::scan(&view, &scan_options);
            let index = engine::storage_view::storage_index(&view);
            if let Some(failure) = view.take_failure().or_else(|| context_view.take_failure()) {
                return Err(FrontendError::Gateway(failure));
            }
            let index = index.map_err(|e| FrontendError::Build(e.to_string()))?;
            let scanned = engine::cache_images::ScannedImages::new(&report, &platform);
            Ok((report, index, scanned))
        })
        .await
        .map_err(|e| FrontendError::Build(format!("the scan stopped: {e}")))??;
        for warning in &report.warnings {
            eprintln!("frontend: warning: {warning}");
        }

        let mirrors = self.registry_mirrors()?;
        let trust_tags = self.options.image_resolve_mode != ResolveMode::ForcePull;
        let pulled: Vec<&Reference> = scanned
            .pulled
            .iter()
            .filter(|reference| !index.holds(reference, trust_tags))
            .collect();
        if pulled.is_empty() && scanned.archives.is_empty() {
            return Ok((Some(rootfs), scanned.listed));
        }
        let source = self.options.source.clone().ok_or_else(|| {
            FrontendError::Build(
                "the frontend image reference (option `source`) is missing: start the frontend through `# syntax=IMAGE`, BUILDKIT_SYNTAX or `--opt source=IMAGE`".into(),
            )
        })?;
        let source = Reference::parse(&source)
            .map_err(|e| FrontendError::Build(format!("the frontend image `{source}`: {e}")))?;
        // Pinned by digest: BuildKit keys a tag by the image's config once the daemon holds
        // the image, and by its manifest before, so an unpinned root would miss the cache.
        let pinned = if source.digest().is_some() {
            source.to_string()
        } else {
            let resolved = self
                .gateway
                .resolve_image_config(
                    &source.to_string(),
                    Some(&self.worker),
                    ResolveMode::Default,
                )
                .await
                .map_err(|e| {
                    FrontendError::Build(format!("resolving the frontend image {source}: {e}"))
                })?;
            pinned(&source, &resolved.digest)
        };
        let frontend = self.image_state(&pinned, &self.worker.clone());
        let inputs = FetchInputs {
            frontend: &frontend,
            platform: &self.worker.clone(),
            image_platform: &self.target.clone(),
            mirrors: &mirrors,
            network_host: self.options.forces_host_network(),
            ignore_cache: self.options.no_cache,
            extra_hosts: &self.extra_hosts(),
        };
        let mut fetches = Vec::new();
        for reference in pulled {
            let text = reference.to_string();
            fetches.push(fetch_step(
                &mut self.graph,
                FetchSource::Registry(&text),
                &inputs,
            ));
        }
        for archive in &scanned.archives {
            fetches.push(fetch_step(
                &mut self.graph,
                FetchSource::Archive {
                    rootfs: &rootfs,
                    path: archive,
                },
                &inputs,
            ));
        }
        // Solve is lazy: the fetches run when their output is first read, so each task reads
        // what its fetch wrote and the fetches run side by side.
        let mut solving = tokio::task::JoinSet::new();
        for (position, fetch) in fetches.iter().enumerate() {
            let definition = self.checked_definition(fetch)?;
            let gateway = self.gateway.clone();
            solving.spawn(async move { (position, read_fetched(&gateway, definition).await) });
        }
        let mut fetched = Vec::new();
        fetched.resize_with(fetches.len(), || None);
        while let Some(joined) = solving.join_next().await {
            let (position, result) =
                joined.map_err(|e| FrontendError::Build(format!("a fetch stopped: {e}")))?;
            fetched[position] = Some(result?);
        }
        let mut state = rootfs;
        for (fetch, images) in fetches.iter().zip(fetched.into_iter().flatten()) {
            for (image, documents) in images {
                let parsed = Reference::parse(&image.reference)
                    .map_err(|e| FrontendError::Build(e.to_string()))?;
                if index.has_image(&parsed, &documents.top.digest()) {
                    continue;
                }
                let files = index
                    .image_layer_entries(&parsed, &documents, &|digest| {
                        Some(PathBuf::from(format!("/{BLOBS_DIR}/{}", digest.hex())))
                    })
                    .map_err(|e| FrontendError::Build(format!("{}: {e}", image.reference)))?;
                let name = format!("store {}", image.reference);
                if let Some(next) = storage_step(
                    &mut self.graph,
                    Some(&state),
                    fetch,
                    &files.entries,
                    &self.target,
                    &name,
                ) {
                    state = next;
                }
                index
                    .observe_entries(&files.entries)
                    .map_err(|e| FrontendError::Build(format!("{}: {e}", image.reference)))?;
            }
        }
        Ok((Some(state), scanned.listed))
    }

    /// Plans the Kubefile over the context, knowing the base once it is resolved.
    async fn plan(
        &self,
        context: &RefId,
        base: Option<&SourceImage>,
    ) -> Result<BuildPlan, FrontendError> {
        let gateway = self.gateway.clone();
        let context = context.clone();
        let file = self.file.clone();
        let base = base.map(SourceImage::plan_base);
        let platform = self.platform.clone();
        let build_platform = self.worker_platform.clone();
        let args: Vec<String> = self
            .options
            .build_args
            .iter()
            .filter(|(name, _)| !FRONTEND_ARGS.contains(&name.as_str()))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let image_type = match self.build_arg(IMAGE_TYPE_ARG) {
            Some(text) => text
                .parse()
                .map_err(|e: String| FrontendError::Build(format!("{IMAGE_TYPE_ARG}: {e}")))?,
            None => kubefile::plan::ImageType::KubeInstaller,
        };
        let announce = base.is_some();
        tokio::task::spawn_blocking(move || {
            let view = GatewayView::new(gateway, context, Handle::current());
            let mut options = PlanOptions::new(&view);
            options.build_args =
                BuildArgs::from_cli(&args, &|_| None).map_err(FrontendError::Kubefile)?;
            options.target_platform = platform;
            options.build_platform = build_platform;
            options.image_type = image_type;
            options.base = base;
            let (plan, warnings) = kubefile::plan_for_build(&file, &options);
            if let Some(failure) = view.take_failure() {
                return Err(FrontendError::Gateway(failure));
            }
            if announce || plan.is_err() {
                for warning in &warnings {
                    eprintln!("{warning}");
                }
            }
            plan.map_err(FrontendError::Kubefile)
        })
        .await
        .map_err(|e| FrontendError::Build(format!("planning stopped: {e}")))?
    }

    /// Resolves `image` for `platform` through the gateway (the instruction at `location`
    /// names it).
    async fn resolve(
        &mut self,
        image: &str,
        platform: &Platform,
        location: Location,
    ) -> Result<Resolved, FrontendError> {
        let reference = Reference::parse(image).map_err(|e| self.at(location, &e.to_string()))?;
        let target = pb_platform(platform);
        let resolved = self
            .gateway
            .resolve_image_config(
                &reference.to_string(),
                Some(&target),
                self.options.image_resolve_mode,
            )
            .await
            .map_err(|e| self.at(location, &format!("resolving {image}: {e}")))?;
        let config: ImageConfig = serde_json::from_slice(&resolved.config).map_err(|e| {
            self.at(
                location,
                &format!("the config of {image} is not an image config: {e}"),
            )
        })?;
        let source = SourceImage::from_config(config)
            .map_err(|e| self.at(location, &format!("{image}: {e}")))?;
        let state = self.image_state(&pinned(&reference, &resolved.digest), &target);
        Ok(Resolved { state, source })
    }

    /// The state of a `docker-image://` source.
    fn image_state(&mut self, reference: &str, platform: &pb::Platform) -> Output {
        self.graph.add_vertex(llb::source::image(
            reference,
            platform,
            self.options.image_resolve_mode,
        ))
    }

    /// The mount points BuildKit would leave in `state`'s root after an exec: those absent now.
    async fn absent_mount_points(
        &self,
        state: Option<&Output>,
    ) -> Result<Vec<String>, FrontendError> {
        let Some(state) = state else {
            return Ok(MOUNT_POINTS.iter().map(|p| (*p).to_owned()).collect());
        };
        let reference = self.solve(state).await?;
        let mut absent = Vec::new();
        for path in MOUNT_POINTS {
            if self.gateway.stat(&reference, path).await?.is_none() {
                absent.push(path.to_owned());
            }
        }
        Ok(absent)
    }

    /// The `.dockerignore` at the context root, when there is one.
    async fn context_dockerignore(&mut self) -> Result<Option<String>, FrontendError> {
        let local = self.local(
            &self.options.context_local.clone(),
            LocalOpts {
                follow_paths: vec![".dockerignore".to_owned()],
                shared_key_hint: format!("{}-.dockerignore", self.options.context_local),
                ..LocalOpts::default()
            },
            "[internal] load .dockerignore",
        );
        let reference = self.solve(&local).await?;
        match self.gateway.read_file(&reference, ".dockerignore").await {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// The texts of the files of `inputs`, by path, read from the local the client sent
    /// them in (only these files are transferred).
    async fn read_scan_inputs(
        &mut self,
        inputs: &ScanInputs,
    ) -> Result<BTreeMap<String, String>, FrontendError> {
        let paths = inputs.paths();
        let mut files = BTreeMap::new();
        if paths.is_empty() {
            return Ok(files);
        }
        let local = self.local(
            &inputs.local,
            LocalOpts {
                follow_paths: paths.iter().map(|path| (*path).to_owned()).collect(),
                shared_key_hint: inputs.local.clone(),
                ..LocalOpts::default()
            },
            "[internal] load scan inputs",
        );
        let reference = self.solve(&local).await?;
        for path in paths {
            let bytes = match self.gateway.read_file(&reference, path).await {
                Ok(bytes) => bytes,
                Err(error) if error.is_not_found() => {
                    return Err(FrontendError::Build(format!(
                        "the scan input `{path}` (option `{SCAN_OPTION}`) was not found in the `{}` directory the client sent; send every file the option names",
                        inputs.local
                    )));
                }
                Err(error) => return Err(error.into()),
            };
            let text = String::from_utf8(bytes).map_err(|_| FrontendError::NotUtf8 {
                name: format!("{}/{path}", inputs.local),
            })?;
            files.insert(path.to_owned(), text);
        }
        Ok(files)
    }

    /// A `local://` source of the client's session, named in the progress output.
    fn local(&mut self, name: &str, opts: LocalOpts, label: &str) -> Output {
        let vertex = llb::source::local(
            name,
            &LocalOpts {
                session: self.options.session_id.clone(),
                ..opts
            },
        );
        self.graph.add_vertex(Vertex {
            metadata: vertex.metadata.named(label),
            op: vertex.op,
        })
    }

    /// Builds `state` now, when the daemon can, so that a failing step is reported at its
    /// instruction (at `location`); otherwise its error comes with the next read.
    async fn evaluate(&self, state: &Output, location: Location) -> Result<(), FrontendError> {
        if self.gateway_caps.require(EVALUATE_CAP).is_err() {
            return Ok(());
        }
        let definition = self.checked_definition(state)?;
        self.gateway
            .solve_now(definition)
            .await
            .map(drop)
            .map_err(|e| self.at(location, &e.to_string()))
    }

    /// The Definition of `output`, once the daemon is known to have every cap it needs.
    fn checked_definition(&self, output: &Output) -> Result<pb::Definition, FrontendError> {
        self.caps.require_all(&self.graph.caps(output))?;
        Ok(self.graph.definition(output))
    }

    async fn solve(&self, output: &Output) -> Result<RefId, FrontendError> {
        let definition = self.checked_definition(output)?;
        Ok(self.gateway.solve(definition).await?)
    }

    /// `SOURCE_DATE_EPOCH` from the build args (BuildKit passes the frontend no environment
    /// of the client), else 0.
    fn source_date_epoch(&self) -> Result<u64, FrontendError> {
        match self.build_arg(SOURCE_DATE_EPOCH_ARG) {
            None => Ok(0),
            Some(text) => image::layer::source_date_epoch(Some(text)).ok_or_else(|| {
                FrontendError::Build(format!(
                    "build arg {SOURCE_DATE_EPOCH_ARG}={text}: expected whole seconds since 1970"
                ))
            }),
        }
    }

    /// The build mode build arg (`all` unless it says `lite`).
    fn build_mode(&self) -> Result<BuildMode, FrontendError> {
        self.build_arg(BUILD_MODE_ARG)
            .map_or(Ok(BuildMode::All), |text| {
                text.parse()
                    .map_err(|e| FrontendError::Build(format!("build arg {BUILD_MODE_ARG}: {e}")))
            })
    }

    /// `SOURCE=MIRROR` entries of the mirrors build arg, each checked.
    fn registry_mirrors(&self) -> Result<Vec<String>, FrontendError> {
        let Some(list) = self.build_arg(REGISTRY_MIRRORS_ARG) else {
            return Ok(Vec::new());
        };
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                image::registry::parse_mirror(entry)
                    .map(|_| entry.to_owned())
                    .map_err(|e| {
                        FrontendError::Build(format!("build arg {REGISTRY_MIRRORS_ARG}: {e}"))
                    })
            })
            .collect()
    }

    /// `--add-host` entries, for the exec steps.
    fn extra_hosts(&self) -> Vec<(String, String)> {
        self.options
            .add_hosts
            .iter()
            .map(|entry| (entry.host.clone(), entry.ip.to_string()))
            .collect()
    }

    fn build_arg(&self, name: &str) -> Option<&str> {
        self.options.build_args.get(name).map(String::as_str)
    }

    /// The instruction's first line, shortened, with credentials in URLs hidden.
    fn instruction_text(&self, location: Location) -> String {
        engine::redact::instruction_text(self.file.line_text(location.line))
    }

    /// An error of the instruction at `location`, as the embedded engine words it
    /// (`Kubefile:LINE:COLUMN: INSTRUCTION: message`).
    fn at(&self, location: Location, message: &str) -> FrontendError {
        let error = engine::error::BuildError::Step {
            kubefile: self.file.name().to_owned(),
            line: location.line,
            column: location.column,
            instruction: self.instruction_text(location),
            message: message.to_owned(),
        };
        FrontendError::Kubefile(error.to_string())
    }
}

/// `reference` pinned to the manifest `digest` the registry resolved it to; as it is when the
/// daemon resolved it from its own store (no digest).
fn pinned(reference: &Reference, digest: &str) -> String {
    if digest.is_empty() {
        reference.to_string()
    } else {
        format!("{}@{digest}", reference.name())
    }
}

/// Solves a fetch step and reads the images it wrote, each with its documents.
async fn read_fetched(
    gateway: &Gateway,
    definition: pb::Definition,
) -> Result<Vec<(FetchedImage, ImageDocuments)>, FrontendError> {
    let reference = gateway.solve(definition).await?;
    let listing = gateway.read_file(&reference, DOCUMENTS_FILE).await?;
    let images: FetchedImages = serde_json::from_slice(&listing).map_err(|e| {
        FrontendError::Build(format!(
            "the fetch step wrote an unreadable {DOCUMENTS_FILE}: {e}"
        ))
    })?;
    let mut fetched = Vec::new();
    for image in images.images {
        let mut blobs = BTreeMap::new();
        for named in std::iter::once(&image.top).chain(&image.children) {
            let path = format!("{BLOBS_DIR}/{}", named.digest.hex());
            blobs.insert(
                named.digest.clone(),
                gateway.read_file(&reference, &path).await?,
            );
        }
        let documents = image
            .documents(|digest| {
                blobs.get(digest).cloned().ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{digest} was not fetched"),
                    )
                })
            })
            .map_err(|e| FrontendError::Build(format!("{}: {e}", image.reference)))?;
        fetched.push((image, documents));
    }
    Ok(fetched)
}
