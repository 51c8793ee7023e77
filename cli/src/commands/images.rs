//! `pull`, `push`, `tag`, `images`, `inspect`, `rmi` and `prune`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use image::manifest::{ImageConfig, Manifest, is_index};
use image::registry::{self, PullOptions};
use image::store::{Store, StoredImage};
use image::{Digest, Reference};
use kubefile::plan::Platform;
use serde_json::{Value, json};

use super::{registry_client, store};
use crate::flags::{
    GlobalArgs, ImagesArgs, InspectArgs, OutputFormat, PullArgs, PushArgs, RmiArgs, TagArgs,
};
use crate::progress::{human_bytes, reporter};
use engine::metadata::{CONTAINER_IMAGES_ANNOTATION, EXTENSION_ANNOTATION, sealer_metadata_text};

fn parse_reference(text: &str) -> Result<Reference> {
    Ok(Reference::parse(text)?)
}

/// `pull IMAGE`: prints the stored digest.
pub async fn pull(global: &GlobalArgs, args: &PullArgs) -> Result<ExitCode> {
    let reference = parse_reference(&args.image)?;
    let platform = match &args.platform {
        Some(p) => p
            .parse::<Platform>()
            .map_err(|e| anyhow::anyhow!("invalid --platform: {e}"))?,
        None => Platform::host(),
    };
    let store = store(global)?;
    let client = registry_client(global)?;
    let pulled = registry::pull(
        &client,
        &store,
        &reference,
        &PullOptions { platform },
        reporter(global.quiet),
    )
    .await?;
    if !global.quiet {
        eprintln!(
            "pulled {} ({} blob{} downloaded)",
            pulled.name,
            pulled.downloaded,
            if pulled.downloaded == 1 { "" } else { "s" }
        );
    }
    println!("{}", pulled.descriptor.digest);
    Ok(ExitCode::SUCCESS)
}

/// `push IMAGE [DESTINATION]`: prints the pushed digest.
pub async fn push(global: &GlobalArgs, args: &PushArgs) -> Result<ExitCode> {
    let store = store(global)?;
    let image = store.find(&args.image)?;
    let target = match &args.destination {
        Some(d) => parse_reference(d)?,
        None => image.name.clone(),
    };
    if target.tag().is_none() && target.digest().is_some() {
        anyhow::bail!("push to a tag, not a digest: {target}");
    }
    let client = registry_client(global)?;
    let digest = registry::push(&client, &store, &image, &target, reporter(global.quiet)).await?;
    if !global.quiet {
        eprintln!("pushed {target}");
    }
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// `tag SOURCE TARGET...`
pub fn tag(global: &GlobalArgs, args: &TagArgs) -> Result<ExitCode> {
    let store = store(global)?;
    let image = store.find(&args.source)?;
    let source = image
        .descriptor
        .annotations
        .get(image::store::SOURCE_ANNOTATION)
        .and_then(|s| Reference::parse(s).ok());
    let mut descriptor = image.descriptor.clone();
    descriptor.annotations.clear();
    for target in &args.targets {
        let target = parse_reference(target)?;
        store.tag(&target, &descriptor, source.as_ref())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Total size of an image: its manifest, config and layers (all children for an index).
fn image_size(store: &Store, image: &StoredImage) -> Result<u64> {
    let mut total = 0;
    for digest in store.referenced_blobs(&image.descriptor)? {
        total += std::fs::metadata(store.blob_path(&digest)).map_or(0, |m| m.len());
    }
    Ok(total)
}

fn platform_text(image: &StoredImage) -> String {
    if is_index(&image.descriptor.media_type) {
        return "multi-platform".to_owned();
    }
    image
        .descriptor
        .platform
        .as_ref()
        .map_or_else(|| "-".to_owned(), |p| p.platform().to_string())
}

/// `images`
pub fn list(global: &GlobalArgs, args: &ImagesArgs) -> Result<ExitCode> {
    let store = store(global)?;
    let images = store.list()?;
    match args.output {
        OutputFormat::Json => {
            let mut items = Vec::new();
            for image in &images {
                items.push(json!({
                    "name": image.name.to_string(),
                    "repository": image.name.name(),
                    "tag": image.name.tag(),
                    "digest": image.descriptor.digest.to_string(),
                    "mediaType": image.descriptor.media_type,
                    "platform": platform_text(image),
                    "size": image_size(&store, image)?,
                }));
            }
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
        OutputFormat::Table => {
            let mut rows = vec![[
                "REPOSITORY".to_owned(),
                "TAG".to_owned(),
                "DIGEST".to_owned(),
                "PLATFORM".to_owned(),
                "SIZE".to_owned(),
            ]];
            for image in &images {
                rows.push([
                    image.name.name(),
                    image.name.tag().unwrap_or("<none>").to_owned(),
                    image.descriptor.digest.hex()[..12].to_owned(),
                    platform_text(image),
                    human_bytes(image_size(&store, image)?),
                ]);
            }
            let widths: Vec<usize> = (0..5)
                .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                .collect();
            for row in rows {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                println!("{}", line.join("   ").trim_end());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn json_blob(store: &Store, digest: &Digest) -> Result<Value> {
    let bytes = store.read_blob(digest)?;
    serde_json::from_slice(&bytes).with_context(|| format!("blob {digest} is not JSON"))
}

/// The sealer metadata of a manifest: parsed annotations (or the config labels of the same
/// names, for an image built by Docker) and the sealer labels of the config.
fn sealer_metadata(manifest: &Manifest, config: &ImageConfig) -> Value {
    let annotation = |key: &str| {
        sealer_metadata_text(&manifest.annotations, &config.config.labels, key).map(|text| {
            serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        })
    };
    let labels: serde_json::Map<String, Value> = config
        .config
        .labels
        .iter()
        .filter(|(k, _)| k.contains("sealer.io/"))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "extension": annotation(EXTENSION_ANNOTATION),
        "containerImages": annotation(CONTAINER_IMAGES_ANNOTATION),
        "labels": labels,
    })
}

fn inspect_manifest(store: &Store, digest: &Digest) -> Result<Value> {
    let manifest = json_blob(store, digest)?;
    let parsed = store.read_manifest(digest)?;
    let config_bytes = store.read_blob(&parsed.config.digest)?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .with_context(|| format!("config {} is not an image config", parsed.config.digest))?;
    Ok(json!({
        "digest": digest.to_string(),
        "platform": format!("{}/{}{}", config.os, config.architecture, config.variant.as_ref().map(|v| format!("/{v}")).unwrap_or_default()),
        "manifest": manifest,
        "config": serde_json::from_slice::<Value>(&config_bytes)?,
        "sealer": sealer_metadata(&parsed, &config),
    }))
}

/// `inspect IMAGE`: JSON with the manifest (or index), config and sealer metadata.
pub fn inspect(global: &GlobalArgs, args: &InspectArgs) -> Result<ExitCode> {
    let store = store(global)?;
    let image = store.find(&args.image)?;
    let digest = &image.descriptor.digest;
    let mut out = json!({
        "name": image.name.to_string(),
        "digest": digest.to_string(),
        "mediaType": image.descriptor.media_type,
        "size": image_size(&store, &image)?,
    });
    if is_index(&image.descriptor.media_type) {
        let index = store.read_index_document(digest)?;
        out["index"] = json_blob(&store, digest)?;
        let mut children = Vec::new();
        for child in &index.manifests {
            if store.has_blob(&child.digest) {
                children.push(inspect_manifest(&store, &child.digest)?);
            }
        }
        out["manifests"] = Value::Array(children);
    } else {
        let details = inspect_manifest(&store, digest)?;
        if let Value::Object(map) = details {
            for (k, v) in map {
                if k != "digest" {
                    out[k] = v;
                }
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

/// `rmi IMAGE...`
pub fn rmi(global: &GlobalArgs, args: &RmiArgs) -> Result<ExitCode> {
    let store = store(global)?;
    for name in &args.images {
        let image = store.find(name)?;
        let by_name = Reference::parse(name).is_ok_and(|r| r == image.name);
        let names: Vec<Reference> = if by_name {
            vec![image.name.clone()]
        } else {
            let all = store
                .names_by_digest()?
                .remove(&image.descriptor.digest)
                .unwrap_or_default();
            if all.len() > 1 && !args.force {
                anyhow::bail!(
                    "{name} has several names ({}); remove them by name, or use --force",
                    all.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            all
        };
        for n in names {
            store.untag(&n)?;
            println!("Untagged: {n}");
        }
    }
    if args.prune {
        print_prune(&store)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_prune(store: &Store) -> Result<()> {
    let stats = store.prune()?;
    println!(
        "Deleted {} blobs, {} freed",
        stats.blobs,
        human_bytes(stats.bytes)
    );
    Ok(())
}

/// `prune`
pub fn prune(global: &GlobalArgs) -> Result<ExitCode> {
    print_prune(&store(global)?)?;
    Ok(ExitCode::SUCCESS)
}
