//! Kubefile parsing speed: parses generated Kubefiles of 1k, 10k and 100k instructions and
//! prints, for each size, the time against the floor (splitting the same text into lines and
//! summing their bytes once) and the growth factor against the previous size (10.0 = linear).

use bench::{best_of, millis, quick_mode, ratio};

/// A Kubefile with `n` instructions that uses every instruction form.
fn generate(n: usize) -> String {
    let mut text = String::from("# syntax=sealer/kubefile\nARG VERSION=1.25\nFROM scratch\n");
    for i in 0..n {
        if i % 12 == 9 {
            text.push_str("# a comment line between instructions\n");
        }
        let line = match i % 12 {
            0 => format!("COPY --chmod=0644 etc/file-{i}.yaml manifests/\n"),
            1 => format!("ENV KEY_{i}=\"value ${{VERSION}} {i}\" OTHER_{i}=x\n"),
            2 => format!("LABEL io.example.label-{i}=\"{i}\"\n"),
            3 => format!("RUN echo building {i} && \\\n    mkdir -p dir-{i}\n"),
            4 => format!("ARG A_{i}=${{VERSION:-1}}\n"),
            5 => format!("ADD [\"files/a-{i}.tar\", \"opt/\"]\n"),
            6 => format!("APP app-{i} local://apps/app-{i}\n"),
            7 => format!("APPENV app-{} K{i}=v{i}\n", i - 1),
            8 => format!(
                "APPCMDS app-{} [\"kubectl apply -f a.yaml\", \"echo {i}\"]\n",
                i - 2
            ),
            9 => format!("MAINTAINER team-{i}\n"),
            10 => format!("COPY <<EOF etc/inline-{i}.conf\nkey={i}\nEOF\n"),
            _ => format!("KUBEVERSION >=1.{}.0 <2.0.0\n", i % 30),
        };
        text.push_str(&line);
    }
    text.push_str("CMDS [\"echo done\"]\n");
    text
}

fn main() {
    let quick = quick_mode();
    let sizes: &[usize] = if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    let runs = if quick { 1 } else { 5 };
    println!(
        "kubefile parse benchmark ({} mode, best of {runs})",
        if quick { "quick" } else { "full" }
    );
    let mut previous: Option<std::time::Duration> = None;
    for &n in sizes {
        let text = generate(n);
        let parsed = kubefile::parse(&text);
        assert!(
            !parsed.has_errors(),
            "generated Kubefile does not parse: {:?}",
            parsed.diagnostics.iter().find(|d| d.is_error())
        );
        let floor = best_of(runs, || text.lines().map(str::len).sum::<usize>());
        let parse = best_of(runs, || kubefile::parse(&text).kubefile.instructions.len());
        let growth =
            previous.map_or_else(|| "-".to_owned(), |p| format!("{:.1}x", ratio(parse, p)));
        println!(
            "parse {n:>7} instructions ({:>5} KiB): {:>12}  floor {:>10}  ratio to floor {:>7.1}  growth vs previous size {growth}",
            text.len() / 1024,
            millis(parse),
            millis(floor),
            ratio(parse, floor),
        );
        previous = Some(parse);
    }
}
