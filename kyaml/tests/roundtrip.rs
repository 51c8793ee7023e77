//! `from_yaml(to_yaml(v)) == v` for JSON-like values, the property Helm relies on.

use gotemplate::Value;
use proptest::prelude::*;

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>()
            .prop_filter("finite", |number| number.is_finite())
            .prop_map(Value::Float),
        (-1_000_000_i32..1_000_000).prop_map(|number| Value::Float(f64::from(number))),
        any::<String>().prop_map(Value::from),
        "[a-z0-9 :#'\"\\-\n.]{0,100}".prop_map(Value::from),
        prop_oneof![
            Just("yes"),
            Just("1e3"),
            Just("0x1F"),
            Just("~"),
            Just("2001-12-14"),
            Just("<<"),
            Just("- a"),
            Just("1:20")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::list),
            prop::collection::btree_map(any::<String>(), inner.clone(), 0..6).prop_map(Value::map),
            prop::collection::btree_map("[a-z0-9 ]{0,150}", inner, 0..6).prop_map(Value::map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn yaml_round_trips(input in value()) {
        let text = kyaml::to_yaml(&input).unwrap();
        let back = kyaml::from_yaml_value(&text).map_err(|error| TestCaseError::fail(format!("{error}\n{text}")))?;
        prop_assert_eq!(back, input, "{}", text);
    }

    #[test]
    fn json_round_trips(input in value()) {
        let text = kyaml::to_json(&input).unwrap();
        prop_assert_eq!(kyaml::from_json(&text).unwrap(), input.clone());
        let pretty = kyaml::to_pretty_json(&input).unwrap();
        prop_assert_eq!(kyaml::from_json(&pretty).unwrap(), input);
    }
}

/// Line separators YAML 1.1 reads as breaks and YAML 1.2 as content, in keys and values of
/// every style the emitter would otherwise pick (single-quoted, plain, literal).
#[test]
fn yaml_1_1_line_breaks_round_trip() {
    for text in [
        "\u{2028}!",
        "\u{2029}",
        "a\u{85}b",
        "x \u{2028} y",
        "line\nnext\u{2028}same",
    ] {
        let mut map = std::collections::BTreeMap::new();
        map.insert(text.to_owned(), Value::string(text));
        let input = Value::map(map);
        let yaml = kyaml::to_yaml(&input).unwrap();
        assert_eq!(kyaml::from_yaml_value(&yaml).unwrap(), input, "{yaml}");
    }
}
