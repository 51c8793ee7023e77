//! `fmt` tests; every expected string is what Go's `fmt.Sprintf` prints for the same
//! operands (JSON numbers are float64, literals in templates are int).

#![allow(
    clippy::unnecessary_wraps,
    clippy::unreadable_literal,
    clippy::approx_constant,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::unnecessary_literal_bound,
    clippy::needless_raw_string_hashes
)]

use std::collections::BTreeMap;

use super::{format_value, sprint, sprintf, sprintln};
use crate::Value;

fn int(number: i64) -> Value {
    Value::int(number)
}

fn float(number: f64) -> Value {
    Value::Float(number)
}

fn string(text: &str) -> Value {
    Value::string(text)
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::map(
        entries
            .iter()
            .map(|(key, value)| ((*key).to_string(), value.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[test]
fn integer_verbs_and_flags() {
    assert_eq!(sprintf("%05d", &[int(42)]), "00042");
    assert_eq!(
        sprintf(
            "%5.2v|%05d|%-05d|%.3d|%.0d|%+.3d|%8.3d|%#o|%#b|%x",
            &[
                float(3.14159),
                int(-42),
                int(42),
                int(7),
                int(0),
                int(5),
                int(-5),
                int(8),
                int(5),
                int(-255)
            ]
        ),
        "  3.1|-0042|42   |007||+005|    -005|010|0b101|-ff"
    );
    assert_eq!(
        sprintf(
            "%d|%+d|% d|%x|%X|%o|%O|%b|%c|%q|%U|%#U",
            &[
                int(65),
                int(65),
                int(65),
                int(255),
                int(255),
                int(8),
                int(8),
                int(5),
                int(65),
                int(65),
                int(65),
                int(65)
            ]
        ),
        "65|+65| 65|ff|FF|10|0o10|101|A|'A'|U+0041|U+0041 'A'"
    );
    assert_eq!(
        sprintf("%c|%c|%U", &[int(65), int(-1), int(-1)]),
        "A|\u{FFFD}|U+FFFFFFFFFFFFFFFF"
    );
    assert_eq!(
        sprintf(
            "%c|%q|%#q|%+q|%U",
            &[
                int(0x1F600),
                int(0x1F600),
                int(0x1F600),
                int(0x1F600),
                int(0x1F600)
            ]
        ),
        "😀|'😀'|'😀'|'\\U0001f600'|U+1F600"
    );
    assert_eq!(
        sprintf("%d %T", &[Value::int64(-3), Value::int64(3)]),
        "-3 int64"
    );
}

#[test]
fn float_verbs() {
    assert_eq!(
        sprintf(
            "%e|%E|%f|%F|%g|%G|%.3g|%.10g|%g|%g",
            &[
                float(123456.789),
                float(0.000123),
                float(1e21),
                float(2.5),
                float(1e-5),
                float(1e21),
                float(123456.0),
                float(1.0),
                float(100000.0),
                float(1000000.0)
            ]
        ),
        "1.234568e+05|1.230000E-04|1000000000000000000000.000000|2.500000|1e-05|1E+21|1.23e+05|1|100000|1e+06"
    );
    assert_eq!(
        sprintf(
            "%.0f|%.1f|%.2f|%8.3f|%-8.3f|%08.3f|%+.1f|% .1f",
            &[
                float(2.5),
                float(0.25),
                float(1.005),
                float(3.14159),
                float(3.14159),
                float(-3.14159),
                float(1.0),
                float(1.0)
            ]
        ),
        "2|0.2|1.00|   3.142|3.142   |-003.142|+1.0| 1.0"
    );
    assert_eq!(
        sprintf(
            "%#g|%#.3g|%#e|%#f|%#.0f|%#x|%x|%X|%b",
            &[
                float(1.0),
                float(1.0),
                float(1.0),
                float(1.0),
                float(1.0),
                float(1.0),
                float(1.5),
                float(-2.5),
                float(1.0)
            ]
        ),
        "1.00000|1.00|1.000000e+00|1.000000|1.|0x1.0000p+00|0x1.8p+00|-0X1.4P+01|4503599627370496p-52"
    );
    assert_eq!(
        sprintf(
            "%08.3f|%+08.3f|%-8.2f|%08.3e",
            &[float(-1.5), float(1.5), float(1.5), float(12345.678)]
        ),
        "-001.500|+001.500|1.50    |1.235e+04"
    );
    assert_eq!(sprintf("%6.2f%%", &[float(99.5)]), " 99.50%");
    assert_eq!(
        sprintf(
            "%v %v %v %v %v %v",
            &[
                float(1e6),
                float(3.9),
                float(100000.0),
                float(1e21),
                float(0.0001),
                float(1e-7)
            ]
        ),
        "1e+06 3.9 100000 1e+21 0.0001 1e-07"
    );
    assert_eq!(
        sprintf(
            "%f|%v|%5.1f",
            &[
                float(f64::INFINITY),
                float(f64::NAN),
                float(f64::NEG_INFINITY)
            ]
        ),
        "+Inf|NaN| -Inf"
    );
}

#[test]
fn string_verbs() {
    assert_eq!(
        sprintf(
            "%5s|%-5s|%.2s|%5.1s|%q|%x|% x|%#x|%X",
            &[
                string("héllo"),
                string("ab"),
                string("héllo"),
                string("xyz"),
                string("a\"b"),
                string("hi"),
                string("hi"),
                string("hi"),
                string("hi")
            ]
        ),
        "héllo|ab   |hé|    x|\"a\\\"b\"|6869|68 69|0x6869|6869"
    );
    assert_eq!(
        sprintf(
            "%x|%X|%#x|%08x",
            &[string("héllo"), string("AB"), string(""), string("ab")]
        ),
        "68c3a96c6c6f|4142||00006162"
    );
    assert_eq!(
        sprintf(
            "%05s|%-05s|%05q",
            &[string("ab"), string("ab"), string("ab")]
        ),
        "000ab|ab   |0\"ab\""
    );
    assert_eq!(
        sprintf("%+q|%#q|%#q", &[string("é"), string("a"), string("a`b")]),
        "\"\\u00e9\"|`a`|\"a`b\""
    );
    assert_eq!(
        sprintf(
            "%.3s|%.10s|%.0s|%5.2q",
            &[string("héllo"), string("ab"), string("abc"), string("abc")]
        ),
        "hél|ab|| \"ab\""
    );
}

#[test]
fn bools_bytes_and_types() {
    let bytes = Value::Bytes(std::rc::Rc::from(&b"hi"[..]));
    assert_eq!(
        sprintf(
            "%t|%v|%5t|%d",
            &[
                Value::Bool(true),
                Value::Bool(false),
                Value::Bool(true),
                Value::Bool(true)
            ]
        ),
        "true|false| true|%!d(bool=true)"
    );
    assert_eq!(
        sprintf(
            "%s|%v|%d|%x|%q",
            &[
                bytes.clone(),
                bytes.clone(),
                bytes.clone(),
                bytes.clone(),
                bytes.clone()
            ]
        ),
        "hi|[104 105]|[104 105]|6869|\"hi\""
    );
    assert_eq!(
        sprintf(
            "%T|%T|%T|%T|%T|%T|%T|%T",
            &[
                int(1),
                float(1.0),
                string("s"),
                Value::Bool(true),
                Value::Nil,
                Value::list(vec![]),
                Value::empty_map(),
                bytes
            ]
        ),
        "int|float64|string|bool|<nil>|[]interface {}|map[string]interface {}|[]uint8"
    );
}

#[test]
fn composite_values() {
    let list = Value::list(vec![float(1.0), string("a"), Value::Nil, float(1.5)]);
    assert_eq!(
        sprintf(
            "%v|%d|%s|%x",
            &[list.clone(), list.clone(), list.clone(), list]
        ),
        "[1 a <nil> 1.5]|[%!d(float64=1) %!d(string=a) <nil> %!d(float64=1.5)]|[%!s(float64=1) a <nil> %!s(float64=1.5)]|[0x1p+00 61 <nil> 0x1.8p+00]"
    );
    let m = map(&[("a", float(1.0)), ("b", string("x"))]);
    assert_eq!(
        sprintf("%v|%d|%s", &[m.clone(), m.clone(), m.clone()]),
        "map[a:1 b:x]|map[%!d(string=a):%!d(float64=1) %!d(string=b):%!d(string=x)]|map[a:%!s(float64=1) b:x]"
    );
    let l = Value::list(vec![float(1.0), string("a"), Value::Nil]);
    assert_eq!(
        sprintf(
            "%#v|%#v|%#v|%#v|%#v",
            &[m.clone(), l, string("s"), float(1.0), Value::Nil]
        ),
        "map[string]interface {}{\"a\":1, \"b\":\"x\"}|[]interface {}{1, \"a\", interface {}(nil)}|\"s\"|1|<nil>"
    );
    assert_eq!(sprintf("%+v", &[map(&[("a", float(1.0))])]), "map[a:1]");
    assert_eq!(
        sprintf(
            "%5v|%-4v|%05v",
            &[
                Value::list(vec![float(1.0), string("ab")]),
                string("a"),
                int(3)
            ]
        ),
        "[    1    ab]|a   |00003"
    );
    let nested = map(&[
        ("b", Value::Nil),
        (
            "a",
            Value::list(vec![Value::Nil, map(&[("c", float(1.0))])]),
        ),
    ]);
    assert_eq!(
        sprintf("%v|%d|%s", &[nested.clone(), nested.clone(), nested]),
        "map[a:[<nil> map[c:1]] b:<nil>]|map[%!d(string=a):[<nil> map[%!d(string=c):%!d(float64=1)]] %!d(string=b):<nil>]|map[a:[<nil> map[c:%!s(float64=1)]] b:<nil>]"
    );
}

#[test]
fn wrong_missing_and_extra_operands() {
    assert_eq!(sprintf("%d", &[string("abc")]), "%!d(string=abc)");
    assert_eq!(
        sprintf("%s %d %t", &[float(3.5), float(3.5), int(1)]),
        "%!s(float64=3.5) %!d(float64=3.5) %!t(int=1)"
    );
    assert_eq!(
        sprintf("%s|%d|%v", &[Value::Nil, Value::Nil, Value::Nil]),
        "%!s(<nil>)|%!d(<nil>)|<nil>"
    );
    assert_eq!(sprintf("%d %d", &[int(1)]), "1 %!d(MISSING)");
    assert_eq!(sprintf("%d %s", &[]), "%!d(MISSING) %!s(MISSING)");
    assert_eq!(
        sprintf("%d", &[int(1), int(2), string("x"), Value::Nil]),
        "1%!(EXTRA int=2, string=x, <nil>)"
    );
    assert_eq!(
        sprintf("%!|%z|%", &[int(1)]),
        "%!!(int=1)|%!z(MISSING)|%!(NOVERB)"
    );
    assert_eq!(sprintf("%%|%5%", &[]), "%|%");
    assert_eq!(sprintf("%5d", &[string("ab")]), "%!d(string=   ab)");
}

#[test]
fn star_width_precision_and_indexes() {
    assert_eq!(
        sprintf(
            "%*d|%-*d|%.*f|%*s",
            &[
                int(5),
                int(1),
                int(5),
                int(2),
                int(2),
                float(3.14159),
                int(-4),
                string("a")
            ]
        ),
        "    1|2    |3.14|a   "
    );
    assert_eq!(sprintf("%*d", &[string("x"), int(1)]), "%!(BADWIDTH)1");
    assert_eq!(sprintf("%.*d", &[int(-1), int(1)]), "%!(BADPREC)1");
    assert_eq!(
        sprintf("%[2]d %[1]d|%[3]d|%[1]d %d", &[int(1), int(2)]),
        "2 1|%!d(BADINDEX)|1 2"
    );
    assert_eq!(sprintf("%[x]d", &[int(1)]), "%!d(BADINDEX)");
}

#[test]
fn sprint_and_sprintln_spacing() {
    let args = [
        int(1),
        int(2),
        string("a"),
        string("b"),
        int(3),
        Value::Bool(true),
        Value::Nil,
    ];
    assert_eq!(sprint(&args), "1 2ab3 true <nil>");
    assert_eq!(sprintln(&args), "1 2 a b 3 true <nil>\n");
    assert_eq!(sprint(&[]), "");
    assert_eq!(sprintln(&[]), "\n");
    assert_eq!(
        format_value(&map(&[("a", float(1.0))]), 's'),
        "map[a:%!s(float64=1)]"
    );
}

#[test]
fn huge_precisions_pad_with_zeros_instead_of_panicking() {
    let fixed = sprintf("%.70000f", &[Value::Float(1.5)]);
    assert_eq!(fixed.len(), 2 + 70_000);
    assert!(fixed.starts_with("1.5000") && fixed.ends_with('0'));
    let exponent = sprintf("%.70000e", &[Value::Float(1.5)]);
    assert!(
        exponent.starts_with("1.5000") && exponent.ends_with("e+00"),
        "{}",
        &exponent[..10]
    );
    assert!(
        sprintf("%.70000g", &[Value::Float(0.1)])
            .starts_with("0.1000000000000000055511151231257827")
    );
}
