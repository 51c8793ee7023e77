//! Parsing: go-yaml v2 typing, positions, anchors and merges, limits and errors.

use std::fmt::Write as _;

use gotemplate::Value;
use kyaml::{
    Document, Limits, NodeKind, YamlError, documents, from_yaml, from_yaml_array, from_yaml_value,
    parse_documents, parse_documents_lenient,
};

fn kind(text: &str) -> NodeKind {
    let documents = parse_documents(&format!("v: {text}\n"), &Limits::default()).unwrap();
    documents[0].root.get("v").unwrap().kind.clone()
}

#[test]
fn plain_scalars_are_typed_as_go_yaml_v2() {
    for text in ["~", "null", "Null", "NULL", ""] {
        assert_eq!(kind(text), NodeKind::Null, "{text:?}");
    }
    for text in [
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
    ] {
        assert_eq!(kind(text), NodeKind::Bool(true), "{text}");
    }
    for text in [
        "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
    ] {
        assert_eq!(kind(text), NodeKind::Bool(false), "{text}");
    }
    for (text, number) in [
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("0x1f", 31),
        ("0o17", 15),
        ("017", 15),
        ("0b11", 3),
        ("1_000_000", 1_000_000),
    ] {
        assert_eq!(kind(text), NodeKind::Int(number), "{text}");
    }
    for (text, number) in [
        ("1.5", 1.5),
        ("-2.5e3", -2500.0),
        (".5", 0.5),
        ("1e6", 1e6),
        (".inf", f64::INFINITY),
        ("-.INF", f64::NEG_INFINITY),
    ] {
        assert_eq!(kind(text), NodeKind::Float(number), "{text}");
    }
    assert!(matches!(kind(".NaN"), NodeKind::Float(value) if value.is_nan()));
    for text in [
        "2001-12-14",
        "2001-12-14T21:59:43.10Z",
        "'1'",
        "\"true\"",
        "!!str 12",
        "v1.2.3",
        "1.2.3",
        "hello world",
        "yes please",
        "0x",
        "12:30",
    ] {
        assert!(matches!(kind(text), NodeKind::String(_)), "{text}");
    }
    assert_eq!(kind("!!float 3"), NodeKind::Float(3.0));
    assert_eq!(kind("!!int \"12\""), NodeKind::Int(12));
    assert_eq!(kind("!custom 12"), NodeKind::String("12".into()));
    assert_eq!(kind("!!binary aGVsbG8="), NodeKind::String("hello".into()));
    let error = parse_documents("v: !!int abc\n", &Limits::default()).unwrap_err();
    assert_eq!(error.message, "cannot decode !!str `abc` as a !!int");
}

#[test]
fn nodes_carry_positions() {
    let text = "# comment\n---\nkind: Pod\nspec:\n  containers:\n    - name: app\n      image: \"nginx:1.25\"\n";
    let documents = parse_documents(text, &Limits::default()).unwrap();
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0].start_line, 2);
    let image = documents[0]
        .root
        .get("spec")
        .unwrap()
        .get("containers")
        .unwrap();
    let NodeKind::Sequence(items) = &image.kind else {
        panic!("{image:?}")
    };
    let image = items[0].get("image").unwrap();
    assert_eq!(image.as_str(), Some("nginx:1.25"));
    assert_eq!((image.line, image.column), (7, 14));
}

#[test]
fn empty_documents_are_skipped() {
    let text = "---\n---\n# nothing\n---\na: 1\n---\n...\n---\n- x\n";
    let documents = parse_documents(text, &Limits::default()).unwrap();
    assert_eq!(documents.len(), 2);
    assert_eq!(documents[0].start_line, 4);
    assert_eq!(documents[1].start_line, 8);
}

#[test]
fn anchors_aliases_and_merge_keys_expand() {
    let text = "base: &b {x: 1, y: 2}\nother: &o {y: 3, z: 4}\nm1:\n  <<: *b\n  x: 10\nm2:\n  <<: [*b, *o]\nm3:\n  x: 0\n  <<: *b\nlist: [*b, *b]\n";
    let value = from_yaml(text).unwrap();
    let expected = from_yaml(
        "base: {x: 1, y: 2}\nother: {y: 3, z: 4}\nm1: {x: 10, y: 2}\nm2: {x: 1, y: 2, z: 4}\nm3: {x: 1, y: 2}\nlist: [{x: 1, y: 2}, {x: 1, y: 2}]\n",
    )
    .unwrap();
    assert_eq!(value, expected);
    let error = parse_documents("a: *missing\n", &Limits::default()).unwrap_err();
    assert_eq!(error.line, 1);
    let error = parse_documents("a: &s text\nb:\n  <<: *s\n", &Limits::default()).unwrap_err();
    assert!(error.message.contains("map merge requires"), "{error}");
}

#[test]
fn duplicate_keys_keep_the_last_and_keys_become_strings() {
    let value = from_yaml("a: 1\na: 2\ntrue: x\n1: one\n1.5: z\n1e6: w\n0x10: h\n").unwrap();
    let expected = Value::map(
        [
            ("a", Value::Float(2.0)),
            ("true", "x".into()),
            ("1", "one".into()),
            ("1.5", "z".into()),
            ("1e+06", "w".into()),
            ("16", "h".into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect(),
    );
    assert_eq!(value, expected);
    let error = from_yaml("~: x\n").unwrap_err();
    assert!(error.message.contains("unsupported map key"), "{error}");
}

#[test]
fn values_are_typed_as_helm_sees_them() {
    let value = from_yaml_value("[1, 2.5, true, null, text, 0x10]").unwrap();
    assert_eq!(
        value,
        Value::list(vec![
            Value::Float(1.0),
            Value::Float(2.5),
            Value::Bool(true),
            Value::Nil,
            "text".into(),
            Value::Float(16.0)
        ])
    );
    assert_eq!(from_yaml("").unwrap(), Value::empty_map());
    assert_eq!(from_yaml("# nothing\n").unwrap(), Value::empty_map());
    assert_eq!(
        from_yaml("a: 1\n---\nb: 2\n").unwrap(),
        from_yaml("a: 1").unwrap()
    );
    assert_eq!(
        from_yaml("- 1\n").unwrap_err().message,
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
    assert_eq!(
        from_yaml_array("- a\n").unwrap(),
        Value::list(vec!["a".into()])
    );
    assert!(from_yaml_array("a: 1\n").is_err());
    assert_eq!(
        from_yaml("a: .nan\n").unwrap_err().message,
        "json: unsupported value: NaN"
    );
    assert_eq!(from_yaml_value("").unwrap(), Value::Nil);
}

#[test]
fn syntax_errors_carry_positions() {
    let error = parse_documents("a:\n  - b\n c: d\n", &Limits::default()).unwrap_err();
    assert_eq!((error.line, error.column), (3, 2));
    assert!(
        error.message.contains("did not find expected key"),
        "{error}"
    );
    let error = parse_documents("a: b: c\n", &Limits::default()).unwrap_err();
    assert_eq!((error.line, error.column), (1, 5));
    assert_eq!(
        error.to_string(),
        "yaml: line 1: column 5: mapping values are not allowed in this context"
    );
    assert!(parse_documents("a: [1, 2\n", &Limits::default()).is_err());
    assert!(parse_documents("a: 'unterminated\n", &Limits::default()).is_err());
}

#[test]
fn lenient_parsing_keeps_the_good_documents() {
    let text = "a: 1\n---\nb: [\n---\nc: 3\n---\nd: : :\n---\ne: 5\n";
    let (documents, errors) = parse_documents_lenient(text, &Limits::default());
    let keys: Vec<_> = documents
        .iter()
        .map(|document| match &document.root.kind {
            NodeKind::Mapping(pairs) => pairs[0].0.as_str().unwrap().to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys, ["a", "c", "e"]);
    assert_eq!(errors.len(), 2);
    assert_eq!(documents[2].start_line, 8);
    assert_eq!(documents[2].root.line, 9);
}

fn first_key(document: &Document) -> String {
    match &document.root.kind {
        NodeKind::Mapping(pairs) => pairs[0].0.as_str().unwrap().to_string(),
        NodeKind::Null => "(empty)".into(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn documents_stream_one_at_a_time_and_resume_after_errors() {
    let text = "a: 1\n---\nb: [\n---\nc: 3\n---\n---\nd: : :\n---\ne: 5\n";
    let items: Vec<_> = documents(text, &Limits::default()).collect();
    let shown: Vec<_> = items
        .iter()
        .map(|item| match item {
            Ok(document) => format!("{}@{}", first_key(document), document.start_line),
            Err(error) => format!("error@{}", error.line),
        })
        .collect();
    assert_eq!(shown, ["a@1", "error@4", "c@4", "error@8", "e@9"]);
    let (parsed, errors) = parse_documents_lenient(text, &Limits::default());
    let oks: Vec<_> = items.iter().filter_map(|item| item.clone().ok()).collect();
    let errs: Vec<_> = items.into_iter().filter_map(Result::err).collect();
    assert_eq!((parsed, errors), (oks, errs));

    // Lazy: the first document comes without reading the rest.
    let mut stream = documents("a: 1\n---\nb: [\n", &Limits::default());
    assert_eq!(first_key(&stream.next().unwrap().unwrap()), "a");
    assert!(stream.next().unwrap().is_err());
    assert!(stream.next().is_none());
    assert!(stream.next().is_none());

    // An error with no later `---` ends the stream.
    let items: Vec<_> = documents("a: [\nb: 1\n", &Limits::default()).collect();
    assert_eq!(items.len(), 1);
    assert!(items[0].is_err());
}

#[test]
fn documents_can_keep_empty_ones() {
    let text = "---\n# nothing\n---\na: 1\n---\nb: [\n---\n---\nc: 3\n";
    let shown: Vec<_> = documents(text, &Limits::default())
        .keep_empty()
        .map(|item| item.map_or_else(|_| "error".into(), |document| first_key(&document)))
        .collect();
    assert_eq!(shown, ["(empty)", "a", "error", "(empty)", "c"]);
    assert_eq!(documents("", &Limits::default()).keep_empty().count(), 0);
    assert_eq!(
        documents("# only\n", &Limits::default())
            .keep_empty()
            .count(),
        0
    );
}

#[test]
fn documents_refuse_oversized_input_once() {
    let limits = Limits {
        max_input_bytes: 4,
        ..Limits::default()
    };
    let items: Vec<_> = documents("a: 1\n---\nb: 2\n", &limits).collect();
    assert_eq!(items.len(), 1);
    assert!(
        items[0]
            .as_ref()
            .unwrap_err()
            .message
            .contains("larger than the limit")
    );
}

#[test]
fn aliases_stand_where_written_and_typed_scalars_keep_their_text() {
    let text = "a: &x {k: 0x1F}\nb: *x\nc: &y yes\nd: *y\ne: 1.10\nf: text\ng: ~\n";
    let root = &parse_documents(text, &Limits::default()).unwrap()[0].root;
    let b = root.get("b").unwrap();
    assert_eq!((b.line, b.column), (2, 4));
    assert_eq!(b.get("k").unwrap().line, 1);
    assert_eq!(root.get_path(&["b", "k"]).unwrap().kind, NodeKind::Int(31));
    assert_eq!(
        root.get_path(&["b", "k"]).unwrap().scalar_text(),
        Some("0x1F")
    );
    assert_eq!(root.get("d").unwrap().line, 4);
    assert_eq!(root.get("d").unwrap().scalar_text(), Some("yes"));
    assert_eq!(root.get("e").unwrap().scalar_text(), Some("1.10"));
    assert_eq!(root.get("f").unwrap().scalar_text(), Some("text"));
    assert_eq!(root.get("f").unwrap().written, None);
    assert_eq!(root.get("g").unwrap().scalar_text(), None);
    assert_eq!(root.scalar_text(), None);
    assert!(root.get_path(&["a", "missing"]).is_none());
}

fn limit_error(text: &str, limits: &Limits) -> YamlError {
    parse_documents(text, limits).unwrap_err()
}

#[test]
fn deep_nesting_is_refused() {
    let mut text = String::new();
    for level in 0..600 {
        text.push_str(&" ".repeat(level));
        text.push_str("a:\n");
    }
    let error = limit_error(&text, &Limits::default());
    assert_eq!(error.line, 501);
    assert!(error.message.contains("nesting deeper"), "{error}");
    let error = limit_error(&"[".repeat(1_000_000), &Limits::default());
    assert!(error.line >= 1, "{error}");
    let error = limit_error(&"- ".repeat(100_000), &Limits::default());
    assert!(error.message.contains("nesting deeper"), "{error}");
    let deep_alias = "a: &a [[[[x]]]]\nb: [[[*a]]]\n";
    let limits = Limits {
        max_depth: 6,
        ..Limits::default()
    };
    assert!(
        limit_error(deep_alias, &limits)
            .message
            .contains("alias expands deeper")
    );
}

#[test]
fn alias_bombs_fail_fast() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = level - 1;
        let items = vec![format!("*a{previous}"); 10].join(", ");
        writeln!(text, "a{level}: &a{level} [{items}]").unwrap();
    }
    let start = std::time::Instant::now();
    let error = limit_error(&text, &Limits::default());
    assert!(error.message.contains("alias bomb"), "{error}");
    assert!(start.elapsed().as_secs() < 5);
}

#[test]
fn oversized_input_is_refused() {
    let limits = Limits {
        max_input_bytes: 10,
        ..Limits::default()
    };
    let error = limit_error("a: 12345678901\n", &limits);
    assert!(error.message.contains("larger than the limit"), "{error}");
}

/// A 50 MiB manifest stream; run with `--release --ignored --nocapture` to see the rate.
#[test]
#[ignore = "measures throughput; slow in debug builds"]
fn large_manifests_parse_quickly() {
    let document = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web, tier: \"frontend\"}\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/team/app:1.2.3\n          args: [--port, \"8080\", --verbose]\n          env:\n            - {name: A, value: 'x'}\n            - name: B\n              value: |\n                multi\n                line\n";
    let text = document.repeat((50 << 20) / document.len());
    let start = std::time::Instant::now();
    let documents = parse_documents(&text, &Limits::default()).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let megabytes = text.len() as f64 / f64::from(1 << 20);
    println!(
        "{megabytes:.1} MiB, {} documents in {seconds:.2} s: {:.1} MiB/s",
        documents.len(),
        megabytes / seconds
    );
    assert!(seconds < 60.0);
}
