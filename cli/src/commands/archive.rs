//! `save`, `load` and `export`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use image::archive::{self, ArchiveFormat as Format};
use image::layer::{UnpackOptions, unpack_layer};
use image::manifest::is_index;

use super::store;
use crate::flags::{ArchiveFormat, ExportArgs, GlobalArgs, LoadArgs, SaveArgs};

/// `save -o FILE IMAGE...`
pub fn save(global: &GlobalArgs, args: &SaveArgs) -> Result<ExitCode> {
    let store = store(global)?;
    let images = args
        .images
        .iter()
        .map(|name| store.find(name))
        .collect::<Result<Vec<_>, _>>()?;
    let format = match args.format {
        ArchiveFormat::Oci => Format::Oci,
        ArchiveFormat::Docker => Format::Docker,
    };
    archive::save(&store, &images, &args.output, format)?;
    if !global.quiet {
        eprintln!(
            "saved {} image(s) to {}",
            images.len(),
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `load -i FILE`
pub fn load(global: &GlobalArgs, args: &LoadArgs) -> Result<ExitCode> {
    let store = store(global)?;
    for name in archive::load(&store, &args.input)? {
        println!("Loaded image: {name}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `export IMAGE DIR`: applies the image's layers in order into an empty directory.
pub fn export(global: &GlobalArgs, args: &ExportArgs) -> Result<ExitCode> {
    let store = store(global)?;
    let image = store.find(&args.image)?;
    if is_index(&image.descriptor.media_type) {
        anyhow::bail!(
            "{} is a multi-platform image; export one of its platforms (pull it with --platform)",
            image.name
        );
    }
    let dir = &args.directory;
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            anyhow::bail!(
                "{} is not empty; export into a new or empty directory",
                dir.display()
            );
        }
    } else {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let _lock = store.lock_shared()?;
    let manifest = store.read_manifest(&image.descriptor.digest)?;
    let options = UnpackOptions::default();
    for layer in &manifest.layers {
        let blob = store.open_blob(&layer.digest)?;
        unpack_layer(std::io::BufReader::new(blob), dir, &options)
            .with_context(|| format!("{}: cannot apply layer {}", image.name, layer.digest))?;
    }
    if !global.quiet {
        eprintln!(
            "exported {} ({} layers) to {}",
            image.name,
            manifest.layers.len(),
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
