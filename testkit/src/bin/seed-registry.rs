//! Pushes small generated images (seeded random data) to a loopback registry under the given
//! names, so that examples build offline: `seed-registry 127.0.0.1:5000 library/busybox:1.36 ...`.

use testkit::images::{ImageSpec, push_generated, seed_of};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(registry) = args.next() else {
        eprintln!("usage: seed-registry REGISTRY_ADDR REPOSITORY:TAG...");
        std::process::exit(2);
    };
    for path in args {
        let spec = ImageSpec {
            architecture: host_architecture().to_owned(),
            ..ImageSpec::amd64(&[64 * 1024], seed_of(&path))
        };
        let generated = push_generated(&registry, &path, &[spec]);
        println!("{registry}/{path} {}", generated.digest);
    }
}

/// This machine's architecture, as OCI names it.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}
