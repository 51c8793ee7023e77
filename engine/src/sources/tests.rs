use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};

use image::layer::{Compression, LayerOptions, write_layer};

use super::*;

fn step(instruction: &str, sources: Vec<Source>, dest: &str, dest_is_dir: bool) -> CopyStep {
    CopyStep {
        location: Location { line: 3, column: 1 },
        instruction: instruction.to_owned(),
        origin: Origin::Context,
        sources,
        dest: dest.to_owned(),
        dest_is_dir,
        chown: None,
        chmod: None,
        unpack_archives: instruction == "ADD",
        app: None,
    }
}

fn path(path: &str) -> Source {
    Source::Path {
        path: path.to_owned(),
    }
}

/// Writes files (parents made 0o755) with the given modes.
fn files(root: &Path, files: &[(&str, &str, u32)]) {
    for (path, content, mode) in files {
        let full = root.join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(&full, content).unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(*mode)).unwrap();
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `path kind mode uid:gid`, kind being `dir`, `file`, `-> target` or `=> target`.
fn listing(entries: &[LayerEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::Dir => "dir".to_owned(),
                EntryKind::File(_) => "file".to_owned(),
                EntryKind::Symlink(target) => format!("-> {target}"),
                EntryKind::Hardlink(target) => format!("=> {target}"),
                other => format!("{other:?}"),
            };
            format!("{} {kind} {:o} {}:{}", e.path, e.mode, e.uid, e.gid)
        })
        .collect()
}

fn contents(entries: &[LayerEntry], path: &str) -> Vec<u8> {
    let entry = entries.iter().find(|e| e.path == path).unwrap();
    match &entry.kind {
        EntryKind::File(FileSource::Path(file)) => fs::read(file).unwrap(),
        EntryKind::File(FileSource::Bytes(bytes)) => bytes.clone(),
        other => panic!("{path} is {other:?}"),
    }
}

async fn copy(
    step: &CopyStep,
    context: &Path,
    ignore: &DockerIgnore,
) -> Result<CopiedFiles, CopyError> {
    let scratch = tempfile::tempdir().unwrap();
    let root = SourceRoot::Context {
        dir: context,
        ignore,
    };
    // Entries from the context do not point into the scratch directory, so it may go now;
    // tests of downloads and archives use `copy_with_scratch`.
    copy_entries(step, root, scratch.path()).await
}

async fn copy_with_scratch(
    step: &CopyStep,
    context: &Path,
    scratch: &Path,
) -> Result<CopiedFiles, CopyError> {
    let ignore = DockerIgnore::default();
    copy_entries(
        step,
        SourceRoot::Context {
            dir: context,
            ignore: &ignore,
        },
        scratch,
    )
    .await
}

#[tokio::test]
async fn a_directory_copies_its_contents() {
    let ctx = tempfile::tempdir().unwrap();
    files(
        ctx.path(),
        &[("app/a.yaml", "a", 0o644), ("app/sub/b.sh", "b", 0o755)],
    );
    chmod(&ctx.path().join("app"), 0o750);
    chmod(&ctx.path().join("app/sub"), 0o755);
    let copied = copy(
        &step("COPY", vec![path("app")], "opt/app", false),
        ctx.path(),
        &DockerIgnore::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        listing(&copied.entries),
        [
            "opt dir 755 0:0",
            "opt/app dir 750 0:0",
            "opt/app/a.yaml file 644 0:0",
            "opt/app/sub dir 755 0:0",
            "opt/app/sub/b.sh file 755 0:0",
        ]
    );
    assert_eq!(contents(&copied.entries, "opt/app/sub/b.sh"), b"b");

    let into_root = copy(
        &step("COPY", vec![path("app")], "", true),
        ctx.path(),
        &DockerIgnore::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        listing(&into_root.entries),
        [
            "a.yaml file 644 0:0",
            "sub dir 755 0:0",
            "sub/b.sh file 755 0:0"
        ]
    );
}

#[tokio::test]
async fn a_file_goes_into_a_directory_or_becomes_the_destination() {
    let ctx = tempfile::tempdir().unwrap();
    files(ctx.path(), &[("conf/a.txt", "a", 0o640)]);
    let none = DockerIgnore::default();
    let into = copy(
        &step("COPY", vec![path("conf/a.txt")], "etc/app", true),
        ctx.path(),
        &none,
    )
    .await
    .unwrap();
    assert_eq!(
        listing(&into.entries),
        [
            "etc dir 755 0:0",
            "etc/app dir 755 0:0",
            "etc/app/a.txt file 640 0:0"
        ]
    );
    let renamed = copy(
        &step("COPY", vec![path("conf/a.txt")], "etc/b.conf", false),
        ctx.path(),
        &none,
    )
    .await
    .unwrap();
    assert_eq!(
        listing(&renamed.entries),
        ["etc dir 755 0:0", "etc/b.conf file 640 0:0"]
    );
    assert_eq!(contents(&renamed.entries, "etc/b.conf"), b"a");

    let missing = copy(
        &step("COPY", vec![path("conf/nope")], "x", false),
        ctx.path(),
        &none,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("COPY at line 3:1")
            && missing.contains("`conf/nope` does not exist in the build context"),
        "{missing}"
    );
}

#[tokio::test]
async fn wildcards_match_within_the_context() {
    let ctx = tempfile::tempdir().unwrap();
    files(
        ctx.path(),
        &[
            ("x.yaml", "x", 0o644),
            ("y.yaml", "y", 0o644),
            ("z.txt", "z", 0o644),
            ("amd64/bin/kubectl", "k1", 0o755),
            ("arm64/bin/kubectl", "k2", 0o755),
            ("arm64/lib/other", "o", 0o644),
        ],
    );
    let none = DockerIgnore::default();
    let yaml = copy(
        &step("COPY", vec![path("*.yaml")], "m", true),
        ctx.path(),
        &none,
    )
    .await
    .unwrap();
    assert_eq!(
        listing(&yaml.entries),
        [
            "m dir 755 0:0",
            "m/x.yaml file 644 0:0",
            "m/y.yaml file 644 0:0"
        ]
    );
    // Each matched directory's contents are merged into the destination.
    let bins = copy(
        &step("COPY", vec![path("*/bin")], "usr/bin", true),
        ctx.path(),
        &none,
    )
    .await
    .unwrap();
    assert_eq!(
        listing(&bins.entries)
            .iter()
            .filter(|l| l.contains("kubectl"))
            .count(),
        1
    );
    assert_eq!(contents(&bins.entries, "usr/bin/kubectl"), b"k2");

    let error = copy(
        &step("COPY", vec![path("*.json")], "m", true),
        ctx.path(),
        &none,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("line 3:1")
            && error.contains("`*.json` matches nothing")
            && error.contains("no source files were specified"),
        "{error}"
    );
}

#[tokio::test]
async fn the_ignore_file_hides_files_from_copy() {
    let ctx = tempfile::tempdir().unwrap();
    files(
        ctx.path(),
        &[
            ("README.md", "r", 0o644),
            ("notes.md", "n", 0o644),
            ("secret/key", "k", 0o600),
            ("build/out.bin", "o", 0o644),
            ("build/keep/k.txt", "k", 0o644),
            ("chart/Chart.yaml", "c", 0o644),
        ],
    );
    let ignore = DockerIgnore::parse("*.md\n!README.md\nsecret\nbuild\n!build/keep\n").unwrap();
    let all = copy(
        &step("COPY", vec![path("")], "app", true),
        ctx.path(),
        &ignore,
    )
    .await
    .unwrap();
    let paths: Vec<&str> = all.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "app",
            "app/README.md",
            "app/build",
            "app/build/keep",
            "app/build/keep/k.txt",
            "app/chart",
            "app/chart/Chart.yaml",
        ]
    );

    let hidden = copy(
        &step("COPY", vec![path("secret/key")], "x", false),
        ctx.path(),
        &ignore,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(hidden.contains("excluded by .dockerignore"), "{hidden}");
    let no_match = copy(
        &step("COPY", vec![path("*.md")], "d", true),
        ctx.path(),
        &ignore,
    )
    .await
    .unwrap();
    assert_eq!(
        listing(&no_match.entries),
        ["d dir 755 0:0", "d/README.md file 644 0:0"]
    );
    let excluded_dir = copy(
        &step("COPY", vec![path("build")], "b", true),
        ctx.path(),
        &ignore,
    )
    .await
    .unwrap();
    let paths: Vec<&str> = excluded_dir
        .entries
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(paths, ["b", "b/keep", "b/keep/k.txt"]);
}

#[tokio::test]
async fn symlinks_stay_inside_directories_and_are_followed_as_sources() {
    let ctx = tempfile::tempdir().unwrap();
    files(
        ctx.path(),
        &[("app/a.yaml", "a", 0o644), ("real/data", "d", 0o644)],
    );
    symlink("a.yaml", ctx.path().join("app/link")).unwrap();
    symlink("/real", ctx.path().join("app/to-real")).unwrap();
    let none = DockerIgnore::default();
    let copied = copy(
        &step("COPY", vec![path("app")], "opt", true),
        ctx.path(),
        &none,
    )
    .await
    .unwrap();
    assert!(listing(&copied.entries).contains(&"opt/link -> a.yaml 777 0:0".to_owned()));
    assert!(listing(&copied.entries).contains(&"opt/to-real -> /real 777 0:0".to_owned()));

    // Given as a source, a symlink is followed; its name is kept. An absolute target is
    // taken from the context root.
    let followed = copy(
        &step(
            "COPY",
            vec![path("app/link"), path("app/to-real/data")],
            "x",
            true,
        ),
        ctx.path(),
        &none,
    )
    .await
    .unwrap();
    assert_eq!(
        listing(&followed.entries),
        [
            "x dir 755 0:0",
            "x/data file 644 0:0",
            "x/link file 644 0:0"
        ]
    );
    assert_eq!(contents(&followed.entries, "x/link"), b"a");
}

#[tokio::test]
async fn symlinks_never_lead_out_of_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    files(
        dir.path(),
        &[("outside/secret", "s", 0o644), ("ctx/ok", "o", 0o644)],
    );
    symlink("../outside", ctx.join("up")).unwrap();
    symlink(dir.path().join("outside"), ctx.join("absolute")).unwrap();
    let none = DockerIgnore::default();

    let error = copy(
        &step("COPY", vec![path("up/secret")], "x", false),
        &ctx,
        &none,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, CopyError::Escapes { link, .. } if link == "up"),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("line 3:1") && message.contains("up/secret"),
        "{message}"
    );

    let error = copy(&step("COPY", vec![path("up")], "x", true), &ctx, &none)
        .await
        .unwrap_err();
    assert!(matches!(error, CopyError::Escapes { .. }), "{error}");

    // An absolute target is looked up inside the context, where it does not exist.
    let error = copy(
        &step("COPY", vec![path("absolute")], "x", true),
        &ctx,
        &none,
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, CopyError::NotFound { .. }) && message.contains("symlink `absolute`"),
        "{message}"
    );

    // Copying the whole context keeps both links as links and reads nothing outside.
    let all = copy(&step("COPY", vec![path("")], "", true), &ctx, &none)
        .await
        .unwrap();
    assert!(
        all.entries.iter().all(
            |e| !matches!(&e.kind, EntryKind::File(FileSource::Path(p)) if !p.starts_with(&ctx))
        )
    );
    assert_eq!(all.entries.len(), 3);
}

#[tokio::test]
async fn owners_and_modes() {
    let ctx = tempfile::tempdir().unwrap();
    files(ctx.path(), &[("d/f", "f", 0o600)]);
    chmod(&ctx.path().join("d"), 0o700);
    let none = DockerIgnore::default();
    let mut chowned = step("COPY", vec![path("d")], "opt/d", false);
    chowned.chown = Some("1000:50".into());
    chowned.chmod = Some(0o640);
    let copied = copy(&chowned, ctx.path(), &none).await.unwrap();
    assert_eq!(
        listing(&copied.entries),
        [
            "opt dir 755 1000:50",
            "opt/d dir 640 1000:50",
            "opt/d/f file 640 1000:50"
        ]
    );

    chowned.chown = Some("root".into());
    chowned.chmod = None;
    let root = copy(&chowned, ctx.path(), &none).await.unwrap();
    assert_eq!(
        listing(&root.entries),
        [
            "opt dir 755 0:0",
            "opt/d dir 700 0:0",
            "opt/d/f file 600 0:0"
        ]
    );

    chowned.chown = Some("app".into());
    let error = copy(&chowned, ctx.path(), &none)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("--chown=app")
            && error.contains("numeric ids")
            && error.contains("line 3:1"),
        "{error}"
    );
}

#[tokio::test]
async fn copy_from_an_image_root_looks_names_up_there() {
    let image_root = tempfile::tempdir().unwrap();
    files(
        image_root.path(),
        &[
            (
                "etc/passwd",
                "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n",
                0o644,
            ),
            ("usr/lib/libx.so.1", "lib", 0o755),
        ],
    );
    symlink(
        "/usr/lib/libx.so.1",
        image_root.path().join("usr/lib/libx.so"),
    )
    .unwrap();
    symlink("../../../usr/lib", image_root.path().join("usr/lib/up")).unwrap();
    let mut from = step(
        "COPY",
        vec![path("usr/lib/libx.so"), path("usr/lib/up/libx.so.1")],
        "lib",
        true,
    );
    from.origin = Origin::Image("base:1".into());
    from.chown = Some("app".into());
    let scratch = tempfile::tempdir().unwrap();
    let copied = copy_entries(
        &from,
        SourceRoot::Image {
            dir: image_root.path(),
        },
        scratch.path(),
    )
    .await
    .unwrap();
    assert_eq!(
        listing(&copied.entries),
        [
            "lib dir 755 1000:1000",
            "lib/libx.so file 755 1000:1000",
            "lib/libx.so.1 file 755 1000:1000"
        ]
    );
    from.sources = vec![path("missing")];
    let error = copy_entries(
        &from,
        SourceRoot::Image {
            dir: image_root.path(),
        },
        scratch.path(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("the root file system of `base:1`"),
        "{error}"
    );
}

#[tokio::test]
async fn hard_links_stay_hard_links() {
    let ctx = tempfile::tempdir().unwrap();
    files(ctx.path(), &[("bin/tool", "t", 0o755)]);
    fs::hard_link(
        ctx.path().join("bin/tool"),
        ctx.path().join("bin/tool-alias"),
    )
    .unwrap();
    let copied = copy(
        &step("COPY", vec![path("bin")], "usr/bin", true),
        ctx.path(),
        &DockerIgnore::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        listing(&copied.entries),
        [
            "usr dir 755 0:0",
            "usr/bin dir 755 0:0",
            "usr/bin/tool file 755 0:0",
            "usr/bin/tool-alias => usr/bin/tool 755 0:0",
        ]
    );
}

#[tokio::test]
async fn add_unpacks_local_archives_and_copies_other_files() {
    let ctx = tempfile::tempdir().unwrap();
    let tar = super::archive::tests::sample_tar();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&tar).unwrap();
    fs::write(ctx.path().join("pkg.tar.gz"), gzip.finish().unwrap()).unwrap();
    files(ctx.path(), &[("plain.tar.gz", "not an archive", 0o644)]);
    let scratch = tempfile::tempdir().unwrap();

    let add = step(
        "ADD",
        vec![path("pkg.tar.gz"), path("plain.tar.gz")],
        "opt",
        true,
    );
    let copied = copy_with_scratch(&add, ctx.path(), scratch.path())
        .await
        .unwrap();
    assert_eq!(
        listing(&copied.entries),
        [
            "opt dir 755 0:0",
            "opt/pkg dir 750 0:0",
            "opt/pkg/tool file 755 1000:1001",
            "opt/pkg/tool-again => opt/pkg/tool 755 1000:1001",
            "opt/plain.tar.gz file 644 0:0",
        ]
    );
    assert_eq!(contents(&copied.entries, "opt/pkg/tool"), b"hello");

    // --chown replaces the archive's owners; --chmod leaves the archive's modes alone; COPY
    // never unpacks.
    let mut chowned = add.clone();
    chowned.chown = Some("5:6".into());
    chowned.chmod = Some(0o600);
    let copied = copy_with_scratch(&chowned, ctx.path(), scratch.path())
        .await
        .unwrap();
    assert_eq!(
        listing(&copied.entries),
        [
            "opt dir 755 5:6",
            "opt/pkg dir 750 5:6",
            "opt/pkg/tool file 755 5:6",
            "opt/pkg/tool-again => opt/pkg/tool 755 5:6",
            "opt/plain.tar.gz file 600 5:6",
        ]
    );
    let copy_step = step("COPY", vec![path("pkg.tar.gz")], "opt", true);
    let copied = copy_with_scratch(&copy_step, ctx.path(), scratch.path())
        .await
        .unwrap();
    assert_eq!(
        listing(&copied.entries),
        ["opt dir 755 0:0", "opt/pkg.tar.gz file 644 0:0"]
    );

    // The unpacked files live as long as the result.
    let add_only = step("ADD", vec![path("pkg.tar.gz")], "opt", true);
    let copied = copy_with_scratch(&add_only, ctx.path(), scratch.path())
        .await
        .unwrap();
    let EntryKind::File(FileSource::Path(unpacked)) = &copied.entries[2].kind else {
        panic!("{:?}", copied.entries[2]);
    };
    let unpacked = unpacked.clone();
    assert!(unpacked.starts_with(scratch.path()));
    drop(copied);
    assert!(!unpacked.exists());
}

#[tokio::test]
async fn add_refuses_archives_it_cannot_read() {
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("x.tar.xz"),
        [0xfd, b'7', b'z', b'X', b'Z', 0, 0],
    )
    .unwrap();
    let error = copy(
        &step("ADD", vec![path("x.tar.xz")], "opt", true),
        ctx.path(),
        &DockerIgnore::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("xz") && error.contains("x.tar.xz") && error.contains("COPY"),
        "{error}"
    );
}

/// One response on a loopback port; the handle of the request line goes into `served`.
fn serve_once(
    status: &'static str,
    body: &'static [u8],
    served: &mut Vec<std::thread::JoinHandle<String>>,
) -> String {
    let (url, request) = testkit::http::serve_once(status, body);
    served.push(request);
    url
}

#[tokio::test]
async fn add_downloads_urls_and_checks_them() {
    let mut served = Vec::new();
    let ctx = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let body: &[u8] = b"\x1f\x8b not unpacked";
    let url = format!(
        "{}/files/chart.tgz?v=1",
        serve_once("200 OK", body, &mut served)
    );
    let mut add = step(
        "ADD",
        vec![Source::Url {
            url: url.clone(),
            checksum: Some(Digest::of(body).to_string()),
        }],
        "charts",
        true,
    );
    let copied = copy_with_scratch(&add, ctx.path(), scratch.path())
        .await
        .unwrap();
    assert_eq!(
        listing(&copied.entries),
        ["charts dir 755 0:0", "charts/chart.tgz file 600 0:0"]
    );
    assert_eq!(contents(&copied.entries, "charts/chart.tgz"), body);

    let wrong = Digest::of(b"something else");
    add.sources = vec![Source::Url {
        url: format!(
            "{}/files/chart.tgz?v=1",
            serve_once("200 OK", body, &mut served)
        ),
        checksum: Some(wrong.to_string()),
    }];
    let error = copy_with_scratch(&add, ctx.path(), scratch.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&wrong.to_string())
            && error.contains(&Digest::of(body).to_string())
            && error.contains("/files/chart.tgz")
            && error.contains("ADD at line 3:1"),
        "{error}"
    );

    let missing = format!(
        "{}/files/chart.tgz?v=1",
        serve_once("404 Not Found", b"no", &mut served)
    );
    add.sources = vec![Source::Url {
        url: missing.clone(),
        checksum: None,
    }];
    add.dest = "charts/renamed.tgz".into();
    add.dest_is_dir = false;
    let error = copy_with_scratch(&add, ctx.path(), scratch.path())
        .await
        .unwrap_err()
        .to_string();
    // The query may hold a token: errors show the URL without it.
    let shown = missing.replace("?v=1", "?***");
    assert!(error.contains(&shown) && error.contains("404"), "{error}");

    let renamed_url = format!(
        "{}/files/chart.tgz?v=1",
        serve_once("200 OK", body, &mut served)
    );
    add.sources = vec![Source::Url {
        url: renamed_url,
        checksum: None,
    }];
    add.chmod = Some(0o644);
    let copied = copy_with_scratch(&add, ctx.path(), scratch.path())
        .await
        .unwrap();
    assert_eq!(
        listing(&copied.entries),
        ["charts dir 755 0:0", "charts/renamed.tgz file 644 0:0"]
    );

    add.sources = vec![Source::Url {
        url: "http://127.0.0.1:9/x".into(),
        checksum: Some("md5:abc".into()),
    }];
    let error = copy_with_scratch(&add, ctx.path(), scratch.path())
        .await
        .unwrap_err();
    assert!(matches!(error, CopyError::ChecksumSyntax { .. }), "{error}");
    for request in served {
        let line = request.join().unwrap();
        assert!(line.starts_with("GET /files/chart.tgz?v=1 "), "{line}");
    }
}

#[tokio::test]
async fn inline_sources_become_files() {
    let ctx = tempfile::tempdir().unwrap();
    let inline = step(
        "COPY",
        vec![
            Source::Inline {
                name: "run.sh".into(),
                content: "echo hi\n".into(),
            },
            Source::Inline {
                name: "env".into(),
                content: "A=1\n".into(),
            },
        ],
        "scripts",
        true,
    );
    let copied = copy(&inline, ctx.path(), &DockerIgnore::default())
        .await
        .unwrap();
    assert_eq!(
        listing(&copied.entries),
        [
            "scripts dir 755 0:0",
            "scripts/env file 644 0:0",
            "scripts/run.sh file 644 0:0"
        ]
    );
    assert_eq!(contents(&copied.entries, "scripts/run.sh"), b"echo hi\n");
}

#[tokio::test]
async fn conflicting_sources_are_reported() {
    let ctx = tempfile::tempdir().unwrap();
    files(
        ctx.path(),
        &[("a/x", "file", 0o644), ("b/x/inner", "i", 0o644)],
    );
    let error = copy(
        &step("COPY", vec![path("a"), path("b")], "d", true),
        ctx.path(),
        &DockerIgnore::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, CopyError::Conflict { path, .. } if path == "d/x"),
        "{error}"
    );
}

#[tokio::test]
async fn entries_write_a_layer() {
    let ctx = tempfile::tempdir().unwrap();
    files(
        ctx.path(),
        &[
            ("app/a.yaml", "a: 1\n", 0o644),
            ("app/bin/run", "#!/bin/sh\n", 0o755),
        ],
    );
    chmod(&ctx.path().join("app"), 0o755);
    chmod(&ctx.path().join("app/bin"), 0o755);
    symlink("bin/run", ctx.path().join("app/start")).unwrap();
    let copied = copy(
        &step("APP", vec![path("app")], "application/apps/demo", true),
        ctx.path(),
        &DockerIgnore::default(),
    )
    .await
    .unwrap();
    let options = LayerOptions {
        compression: Compression::None,
        mtime: 0,
        ..LayerOptions::default()
    };
    let mut tar_bytes = Vec::new();
    write_layer(copied.entries.clone(), &options, &mut tar_bytes).unwrap();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut listed = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut body = String::new();
        entry.read_to_string(&mut body).unwrap();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| format!(" -> {}", l.display()))
            .unwrap_or_default();
        listed.push(format!(
            "{} {:o}{link} {body:?}",
            entry.path().unwrap().display(),
            header.mode().unwrap()
        ));
    }
    assert_eq!(
        listed,
        [
            "application/ 755 \"\"",
            "application/apps/ 755 \"\"",
            "application/apps/demo/ 755 \"\"",
            "application/apps/demo/a.yaml 644 \"a: 1\\n\"",
            "application/apps/demo/bin/ 755 \"\"",
            "application/apps/demo/bin/run 755 \"#!/bin/sh\\n\"",
            "application/apps/demo/start 777 -> bin/run \"\"",
        ]
    );
}
