//! `to_yaml` against outputs of `sigs.k8s.io/yaml.Marshal` (go-yaml v2's emitter).

use gotemplate::Value;
use kyaml::to_yaml;

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::map(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    )
}

fn yaml_of(value: Value) -> String {
    to_yaml(&map(vec![("a", value)])).unwrap()
}

#[test]
fn scalars_are_quoted_as_go_yaml_v2_does() {
    for (text, expected) in [
        ("hi", "a: hi\n"),
        ("true", "a: \"true\"\n"),
        ("y", "a: \"y\"\n"),
        ("10", "a: \"10\"\n"),
        ("1.5", "a: \"1.5\"\n"),
        ("", "a: \"\"\n"),
        ("null", "a: \"null\"\n"),
        ("~", "a: \"~\"\n"),
        ("<<", "a: \"<<\"\n"),
        ("-", "a: '-'\n"),
        ("- x", "a: '- x'\n"),
        ("-x", "a: -x\n"),
        ("b: c", "a: 'b: c'\n"),
        ("b:c", "a: b:c\n"),
        ("Hello #comment", "a: 'Hello #comment'\n"),
        ("a#b", "a: a#b\n"),
        ("1:1", "a: \"1:1\"\n"),
        ("2015-02-24T18:19:39Z", "a: \"2015-02-24T18:19:39Z\"\n"),
        ("<foo>", "a: <foo>\n"),
        ("*x", "a: '*x'\n"),
        ("@x", "a: '@x'\n"),
        ("`x", "a: '`x'\n"),
        ("{x", "a: '{x'\n"),
        (" lead", "a: ' lead'\n"),
        ("trail ", "a: 'trail '\n"),
        ("it's", "a: it's\n"),
        ("'q'", "a: '''q'''\n"),
        ("---", "a: '---'\n"),
        ("\u{0}", "a: \"\\0\"\n"),
        ("a\tb", "a: \"a\\tb\"\n"),
        ("你好", "a: 你好\n"),
        ("😀", "a: \"\\U0001F600\"\n"),
        ("\u{feff}x", "a: \"\\uFEFFx\"\n"),
        ("caf\u{e9}", "a: café\n"),
    ] {
        assert_eq!(yaml_of(text.into()), expected, "{text:?}");
    }
}

#[test]
fn multi_line_strings_use_literal_blocks() {
    assert_eq!(yaml_of("B\nC".into()), "a: |-\n  B\n  C\n");
    assert_eq!(yaml_of("B\nC\n".into()), "a: |\n  B\n  C\n");
    assert_eq!(
        yaml_of("B\n\n".into()),
        "a: |+\n  B\n\nb: 1\n".replace("b: 1\n", "")
    );
    assert_eq!(yaml_of(" B\nC".into()), "a: |2-\n   B\n  C\n");
    assert_eq!(yaml_of("B\n\nC".into()), "a: |-\n  B\n\n  C\n");
    assert_eq!(yaml_of("B \nC".into()), "a: \"B \\nC\"\n");
    let listed = map(vec![("v", Value::list(vec!["A".into(), "B\nC".into()]))]);
    assert_eq!(to_yaml(&listed).unwrap(), "v:\n- A\n- |-\n  B\n  C\n");
}

#[test]
fn collections_use_go_yaml_v2_layout() {
    let value = map(vec![(
        "v",
        Value::list(vec![
            "A".into(),
            Value::Float(1.0),
            map(vec![
                ("B", Value::list(vec![Value::Float(2.0), Value::Float(3.0)])),
                ("C", Value::Nil),
            ]),
            Value::list(vec!["x".into(), "y".into()]),
            Value::list(Vec::new()),
            Value::empty_map(),
        ]),
    )]);
    assert_eq!(
        to_yaml(&value).unwrap(),
        "v:\n- A\n- 1\n- B:\n  - 2\n  - 3\n  C: null\n- - x\n  - \"y\"\n- []\n- {}\n"
    );
    let nested = map(vec![
        ("a", map(vec![("b", map(vec![("c", "d".into())]))])),
        ("e", Value::empty_map()),
    ]);
    assert_eq!(to_yaml(&nested).unwrap(), "a:\n  b:\n    c: d\ne: {}\n");
    assert_eq!(to_yaml(&Value::Nil).unwrap(), "null\n");
    assert_eq!(to_yaml(&Value::empty_map()).unwrap(), "{}\n");
    assert_eq!(to_yaml(&Value::list(Vec::new())).unwrap(), "[]\n");
    assert_eq!(to_yaml(&"text".into()).unwrap(), "text\n");
    assert_eq!(to_yaml(&Value::list(vec!["a".into()])).unwrap(), "- a\n");
}

#[test]
fn numbers_go_through_json_then_go_yaml() {
    for (number, expected) in [
        (5.0, "5"),
        (-0.0, "0"),
        (1.5, "1.5"),
        (1e6, "1000000"),
        (1e20, "1e+20"),
        (1e19, "10000000000000000000"),
        (1e21, "1e+21"),
        (1e-7, "1e-07"),
        (0.000_001, "1e-06"),
        (0.0001, "0.0001"),
        (123_456_789.5, "1.234567895e+08"),
        (0.1, "0.1"),
    ] {
        assert_eq!(
            yaml_of(Value::Float(number)),
            format!("a: {expected}\n"),
            "{number}"
        );
    }
    assert_eq!(yaml_of(Value::int(-42)), "a: -42\n");
    assert_eq!(yaml_of(Value::Bool(false)), "a: false\n");
    assert_eq!(yaml_of(Value::Bytes(b"hi".as_slice().into())), "a: aGk=\n");
    assert_eq!(
        to_yaml(&Value::Float(f64::NAN)).unwrap_err(),
        "error marshaling into JSON: json: unsupported value: NaN"
    );
}

#[test]
fn keys_are_sorted_naturally_and_long_keys_are_explicit() {
    let value = map(vec![
        ("a10", Value::Nil),
        ("a9", Value::Nil),
        ("B", Value::Nil),
        ("b", Value::Nil),
        ("1", Value::Nil),
        ("_x", Value::Nil),
        ("a/002", Value::Nil),
        ("a/0001", Value::Nil),
    ]);
    assert_eq!(
        to_yaml(&value).unwrap(),
        "_x: null\n\"1\": null\nB: null\na/0001: null\na/002: null\na9: null\na10: null\nb: null\n"
    );
    let long = "k".repeat(130);
    assert_eq!(
        to_yaml(&map(vec![(&long, "v".into())])).unwrap(),
        format!("? {long}\n: v\n")
    );
    assert_eq!(
        to_yaml(&map(vec![("x\ny", "v".into())])).unwrap(),
        "? |-\n  x\n  y\n: v\n"
    );
}

#[test]
fn long_lines_fold_at_eighty_columns() {
    let text = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 ";
    assert_eq!(
        yaml_of(text.into()),
        "a: 'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 abcdefghijklmnopqrstuvwxyz\n  ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 '\n"
    );
    let words = vec!["word"; 30].join(" ");
    let folded = yaml_of(words.as_str().into());
    assert!(folded.lines().count() > 1);
    assert_eq!(
        kyaml::from_yaml(&folded).unwrap(),
        map(vec![("a", words.as_str().into())])
    );
    let key = "k".repeat(100);
    let unfolded = to_yaml(&map(vec![(&key, words.as_str().into())])).unwrap();
    assert!(
        unfolded.starts_with(&format!("{key}: word\n  word word")),
        "{unfolded}"
    );
}
