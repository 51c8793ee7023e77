//! Expected outputs from Sprig's documentation and Go's semantics.

use gotemplate::{Error, Functions, IntKind, Runtime, Value};

struct NoTemplates;

impl Runtime for NoTemplates {
    fn execute_named(&mut self, name: &str, _: Value) -> Result<String, Error> {
        Err(Error {
            template: name.into(),
            line: None,
            column: None,
            context: None,
            function: None,
            message: "no templates".into(),
        })
    }

    fn execute_text(&mut self, name: &str, _: &str, dot: Value) -> Result<String, Error> {
        self.execute_named(name, dot)
    }
}

fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    let mut functions = Functions::new();
    crate::register(&mut functions);
    let function = functions
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not registered"));
    function(&mut NoTemplates, args)
}

fn text(name: &str, args: &[Value]) -> String {
    call(name, args)
        .unwrap_or_else(|error| panic!("{name}: {error}"))
        .to_go_string()
}

fn s(value: &str) -> Value {
    Value::from(value)
}

fn i(value: i64) -> Value {
    Value::int(value)
}

fn strings(values: &[&str]) -> Value {
    Value::list(values.iter().map(|value| s(value)).collect())
}

#[test]
fn string_functions() {
    assert_eq!(text("trim", &[s("   hello    ")]), "hello");
    assert_eq!(text("trimAll", &[s("$"), s("$5.00")]), "5.00");
    assert_eq!(text("trimSuffix", &[s("-"), s("hello-")]), "hello");
    assert_eq!(text("trimPrefix", &[s("-"), s("-hello")]), "hello");
    assert_eq!(text("upper", &[s("hello")]), "HELLO");
    assert_eq!(text("lower", &[s("HELLO")]), "hello");
    assert_eq!(text("title", &[s("hello world")]), "Hello World");
    assert_eq!(text("untitle", &[s("Hello World")]), "hello world");
    assert_eq!(text("repeat", &[i(3), s("hello")]), "hellohellohello");
    assert_eq!(text("substr", &[i(0), i(5), s("hello world")]), "hello");
    assert_eq!(text("nospace", &[s("hello w o r l d")]), "helloworld");
    assert_eq!(text("trunc", &[i(5), s("hello world")]), "hello");
    assert_eq!(text("trunc", &[i(-5), s("hello world")]), "world");
    assert_eq!(text("abbrev", &[i(5), s("hello world")]), "he...");
    assert_eq!(
        text("abbrevboth", &[i(5), i(10), s("1234 5678 9123")]),
        "...5678..."
    );
    assert_eq!(text("initials", &[s("First Try")]), "FT");
    assert_eq!(text("wrap", &[i(5), s("Hello World")]), "Hello\nWorld");
    assert_eq!(
        text("wrapWith", &[i(5), s("\t"), s("Hello World")]),
        "Hello\tWorld"
    );
    assert_eq!(text("contains", &[s("cat"), s("catch")]), "true");
    assert_eq!(text("hasPrefix", &[s("cat"), s("catch")]), "true");
    assert_eq!(text("hasSuffix", &[s("cat"), s("catch")]), "false");
    assert_eq!(
        text("quote", &[s("a\"b"), Value::Nil, Value::Float(1.5)]),
        "\"a\\\"b\" \"1.5\""
    );
    assert_eq!(text("squote", &[s("a"), Value::Nil]), "'a'");
    assert_eq!(
        text("cat", &[s("hello"), s("beautiful"), s("world"), Value::Nil]),
        "hello beautiful world"
    );
    assert_eq!(text("indent", &[i(4), s("a\nb")]), "    a\n    b");
    assert_eq!(text("nindent", &[i(2), s("a")]), "\n  a");
    assert_eq!(
        text("replace", &[s(" "), s("-"), s("I Am Henry VIII")]),
        "I-Am-Henry-VIII"
    );
    assert_eq!(
        text("plural", &[s("one anchovy"), s("many anchovies"), i(2)]),
        "many anchovies"
    );
    assert_eq!(text("snakecase", &[s("FirstName")]), "first_name");
    assert_eq!(text("snakecase", &[s("HTTPServer")]), "http_server");
    assert_eq!(text("kebabcase", &[s("FirstName")]), "first-name");
    assert_eq!(text("camelcase", &[s("http_server")]), "HttpServer");
    assert_eq!(text("swapcase", &[s("This Is A.Test")]), "tHIS iS a.tEST");
    assert_eq!(text("toString", &[Value::Nil]), "<nil>");
    assert_eq!(text("toString", &[Value::Float(3.0)]), "3");
    assert_eq!(
        text(
            "join",
            &[s("-"), Value::list(vec![s("a"), Value::Nil, i(1)])]
        ),
        "a-1"
    );
    assert_eq!(
        text("splitList", &[s("$"), s("foo$bar$baz")]),
        "[foo bar baz]"
    );
    assert_eq!(text("split", &[s("$"), s("foo$bar")]), "map[_0:foo _1:bar]");
    assert_eq!(
        text("splitn", &[s("$"), i(2), s("foo$bar$baz")]),
        "map[_0:foo _1:bar$baz]"
    );
    assert_eq!(
        text(
            "toStrings",
            &[Value::list(vec![i(1), Value::Float(2.5), Value::Nil])]
        ),
        "[1 2.5]"
    );
    assert_eq!(text("randAlphaNum", &[i(8)]).len(), 8);
    assert!(
        text("randNumeric", &[i(6)])
            .bytes()
            .all(|byte| byte.is_ascii_digit())
    );
    let shuffled = text("shuffle", &[s("hello")]);
    let mut letters: Vec<char> = shuffled.chars().collect();
    letters.sort_unstable();
    assert_eq!(letters.into_iter().collect::<String>(), "ehllo");
}

#[test]
fn typed_parameters_reject_other_types() {
    assert_eq!(
        call("trunc", &[Value::Float(3.0), s("abc")]).unwrap_err(),
        "wrong type for value; expected int; got float64"
    );
    assert_eq!(
        call("upper", &[Value::Nil]).unwrap_err(),
        "wrong type for value; expected string; got interface {}"
    );
    assert_eq!(
        call("upper", &[]).unwrap_err(),
        "wrong number of args for upper: want 1 got 0"
    );
    assert_eq!(
        call("default", &[]).unwrap_err(),
        "wrong number of args for default: want at least 1 got 0"
    );
    assert!(call("substr", &[i(2), i(1), s("abc")]).is_err());
    assert_eq!(
        call("repeat", &[i(-1), s("a")]).unwrap_err(),
        "strings: negative Repeat count"
    );
}

#[test]
fn conversions_follow_cast() {
    assert_eq!(call("int64", &[s("12")]).unwrap(), Value::int64(12));
    assert_eq!(call("int64", &[s("0x1F")]).unwrap(), Value::int64(31));
    assert_eq!(call("int64", &[s("12.00")]).unwrap(), Value::int64(12));
    assert_eq!(call("int64", &[s("12.5")]).unwrap(), Value::int64(0));
    assert_eq!(call("int", &[Value::Float(3.9)]).unwrap(), Value::int(3));
    assert_eq!(call("int", &[Value::Nil]).unwrap(), Value::int(0));
    assert_eq!(call("int", &[Value::Bool(true)]).unwrap(), Value::int(1));
    assert_eq!(call("float64", &[s("1.5")]).unwrap(), Value::Float(1.5));
    assert_eq!(call("atoi", &[s("42")]).unwrap(), Value::int(42));
    assert_eq!(call("atoi", &[s("4.2")]).unwrap(), Value::int(0));
    assert_eq!(call("toDecimal", &[s("0777")]).unwrap(), Value::int64(511));
}

#[test]
fn math_functions() {
    assert_eq!(
        call("add", &[i(1), Value::Float(2.9), s("3")]).unwrap(),
        Value::int64(6)
    );
    assert_eq!(call("add1", &[i(1)]).unwrap(), Value::int64(2));
    assert_eq!(call("sub", &[i(5), i(3)]).unwrap(), Value::int64(2));
    assert_eq!(call("div", &[i(7), i(2)]).unwrap(), Value::int64(3));
    assert_eq!(
        call("div", &[i(7), i(0)]).unwrap_err(),
        "runtime error: integer divide by zero"
    );
    assert_eq!(call("mod", &[i(7), i(2)]).unwrap(), Value::int64(1));
    assert_eq!(call("mul", &[i(2), i(3), i(4)]).unwrap(), Value::int64(24));
    assert_eq!(call("max", &[i(1), i(5), i(3)]).unwrap(), Value::int64(5));
    assert_eq!(call("min", &[i(4), i(2), i(3)]).unwrap(), Value::int64(2));
    assert_eq!(
        call("floor", &[Value::Float(123.9999)]).unwrap(),
        Value::Float(123.0)
    );
    assert_eq!(
        call("ceil", &[Value::Float(123.001)]).unwrap(),
        Value::Float(124.0)
    );
    assert_eq!(
        call("round", &[Value::Float(123.555_555), i(3)]).unwrap(),
        Value::Float(123.556)
    );
    assert_eq!(
        call("addf", &[Value::Float(1.1), Value::Float(2.2)]).unwrap(),
        Value::Float(3.3)
    );
    assert_eq!(
        call("add1f", &[Value::Float(1.1)]).unwrap(),
        Value::Float(2.1)
    );
    assert_eq!(
        call("subf", &[Value::Float(1.5), Value::Float(0.25)]).unwrap(),
        Value::Float(1.25)
    );
    assert_eq!(
        call("mulf", &[Value::Float(1.1), i(3)]).unwrap(),
        Value::Float(3.3)
    );
    assert_eq!(
        call("divf", &[i(1), i(3)]).unwrap(),
        Value::Float(0.333_333_333_333_333_3)
    );
    assert_eq!(
        call("maxf", &[i(1), Value::Float(2.5)]).unwrap(),
        Value::Float(2.5)
    );
    assert_eq!(text("until", &[i(5)]), "[0 1 2 3 4]");
    assert_eq!(
        call("until", &[i(2)]).unwrap(),
        Value::list(vec![i(0), i(1)])
    );
    assert_eq!(text("untilStep", &[i(3), i(6), i(2)]), "[3 5]");
    assert_eq!(text("seq", &[i(5)]), "1 2 3 4 5");
    assert_eq!(text("seq", &[i(-3)]), "1 0 -1 -2 -3");
    assert_eq!(text("seq", &[i(0), i(2)]), "0 1 2");
    assert_eq!(text("seq", &[i(2), i(-2)]), "2 1 0 -1 -2");
    assert_eq!(text("seq", &[i(0), i(2), i(10)]), "0 2 4 6 8 10");
    assert_eq!(text("seq", &[i(0), i(-2), i(-5)]), "0 -2 -4");
}

#[test]
fn defaults_and_reflection() {
    assert_eq!(text("default", &[s("foo"), Value::Nil]), "foo");
    assert_eq!(text("default", &[s("foo"), s("bar")]), "bar");
    assert_eq!(text("default", &[s("foo"), Value::Bool(false)]), "foo");
    assert_eq!(text("default", &[s("foo"), Value::Float(0.0)]), "foo");
    assert_eq!(text("default", &[s("foo")]), "foo");
    assert_eq!(text("empty", &[Value::empty_map()]), "true");
    assert_eq!(text("coalesce", &[Value::Nil, s(""), s("x")]), "x");
    assert_eq!(text("all", &[i(1), s("")]), "false");
    assert_eq!(text("any", &[i(0), s("a")]), "true");
    assert_eq!(
        text("ternary", &[s("yes"), s("no"), Value::Bool(true)]),
        "yes"
    );
    assert!(call("ternary", &[s("yes"), s("no"), s("true")]).is_err());
    assert_eq!(text("typeOf", &[Value::Float(1.0)]), "float64");
    assert_eq!(text("typeOf", &[Value::Nil]), "<nil>");
    assert_eq!(text("kindOf", &[Value::list(vec![])]), "slice");
    assert_eq!(text("kindIs", &[s("map"), Value::empty_map()]), "true");
    assert_eq!(
        text(
            "typeIsLike",
            &[s("semver.Version"), call("semver", &[s("1.2.3")]).unwrap()]
        ),
        "true"
    );
    assert_eq!(
        text("deepEqual", &[strings(&["a"]), strings(&["a"])]),
        "true"
    );
    assert_eq!(call("fail", &[s("boom")]).unwrap_err(), "boom");
}

#[test]
fn list_functions() {
    let numbers = Value::list(vec![i(1), i(2), i(3)]);
    assert_eq!(text("first", std::slice::from_ref(&numbers)), "1");
    assert_eq!(text("last", std::slice::from_ref(&numbers)), "3");
    assert_eq!(text("rest", std::slice::from_ref(&numbers)), "[2 3]");
    assert_eq!(text("initial", std::slice::from_ref(&numbers)), "[1 2]");
    assert_eq!(text("append", &[numbers.clone(), i(4)]), "[1 2 3 4]");
    assert_eq!(text("prepend", &[numbers.clone(), i(0)]), "[0 1 2 3]");
    assert_eq!(
        text("concat", &[numbers.clone(), strings(&["a"])]),
        "[1 2 3 a]"
    );
    assert_eq!(text("reverse", std::slice::from_ref(&numbers)), "[3 2 1]");
    assert_eq!(
        text("uniq", &[Value::list(vec![i(1), i(1), i(2)])]),
        "[1 2]"
    );
    assert_eq!(text("without", &[numbers.clone(), i(2)]), "[1 3]");
    assert_eq!(text("has", &[i(2), numbers.clone()]), "true");
    assert_eq!(text("has", &[i(2), Value::Nil]), "false");
    assert_eq!(
        text(
            "compact",
            &[Value::list(vec![i(1), s(""), Value::Nil, i(0), s("a")])]
        ),
        "[1 a]"
    );
    assert_eq!(text("slice", &[numbers.clone(), i(1)]), "[2 3]");
    assert_eq!(text("slice", &[numbers.clone(), i(0), i(2)]), "[1 2]");
    assert_eq!(text("chunk", &[i(2), numbers.clone()]), "[[1 2] [3]]");
    assert_eq!(text("sortAlpha", &[strings(&["b", "a"])]), "[a b]");
    assert_eq!(
        call("first", &[s("x")]).unwrap_err(),
        "Cannot find first on type string"
    );
    assert_eq!(
        call("mustFirst", &[Value::Nil]).unwrap_err(),
        "runtime error: invalid memory address or nil pointer dereference"
    );
    assert_eq!(text("first", &[Value::list(vec![])]), "<nil>");
}

fn dict(pairs: &[(&str, Value)]) -> Value {
    Value::map(
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_string(), value.clone()))
            .collect(),
    )
}

#[test]
fn dict_functions() {
    assert_eq!(text("dict", &[s("a"), i(1), s("b")]), "map[a:1 b:]");
    let map = dict(&[("name", s("x")), ("n", i(1))]);
    assert_eq!(text("get", &[map.clone(), s("name")]), "x");
    assert_eq!(text("get", &[map.clone(), s("missing")]), "");
    assert_eq!(text("hasKey", &[map.clone(), s("n")]), "true");
    assert_eq!(
        text("set", &[map.clone(), s("new"), i(2)]),
        "map[n:1 name:x new:2]"
    );
    assert_eq!(text("get", &[map.clone(), s("new")]), "2");
    assert_eq!(text("unset", &[map.clone(), s("new")]), "map[n:1 name:x]");
    assert_eq!(text("keys", std::slice::from_ref(&map)), "[n name]");
    assert_eq!(text("values", std::slice::from_ref(&map)), "[1 x]");
    assert_eq!(text("pick", &[map.clone(), s("n")]), "map[n:1]");
    assert_eq!(text("omit", &[map.clone(), s("n")]), "map[name:x]");
    assert_eq!(
        text("pluck", &[s("n"), map.clone(), dict(&[("n", i(5))])]),
        "[1 5]"
    );
    let nested = dict(&[("a", dict(&[("b", s("c"))]))]);
    assert_eq!(
        text("dig", &[s("a"), s("b"), s("def"), nested.clone()]),
        "c"
    );
    assert_eq!(text("dig", &[s("a"), s("x"), s("def"), nested]), "def");
    assert_eq!(
        text("get", &[Value::Nil, s("a")]),
        "",
        "a nil map argument is a nil map (Go lets nil through to map parameters)"
    );
}

#[test]
fn merge_follows_mergo() {
    let destination = dict(&[
        ("default", s("default")),
        ("overwrite", s("me")),
        ("key", Value::Bool(true)),
        ("empty", Value::Bool(false)),
        ("nested", dict(&[("keep", i(1))])),
    ]);
    let source = dict(&[
        ("overwrite", s("overwritten")),
        ("key", Value::Bool(false)),
        ("empty", Value::Bool(true)),
        ("nested", dict(&[("keep", i(2)), ("add", i(3))])),
        ("list", strings(&["x"])),
    ]);
    let merged = call("merge", &[destination.clone(), source.clone()]).unwrap();
    assert_eq!(
        merged.to_go_string(),
        "map[default:default empty:true key:true list:[x] nested:map[add:3 keep:1] overwrite:me]"
    );
    assert_eq!(destination.to_go_string(), merged.to_go_string());
    let destination = dict(&[
        ("default", s("default")),
        ("overwrite", s("me")),
        ("key", Value::Bool(true)),
    ]);
    let source = dict(&[("overwrite", s("overwritten")), ("key", Value::Bool(false))]);
    assert_eq!(
        text("mergeOverwrite", &[destination, source]),
        "map[default:default key:false overwrite:overwritten]"
    );
}

#[test]
fn encodings_and_hashes() {
    assert_eq!(text("b64enc", &[s("hello")]), "aGVsbG8=");
    assert_eq!(text("b64dec", &[s("aGVsbG8=")]), "hello");
    assert_eq!(
        text("b64dec", &[s("a")]),
        "illegal base64 data at input byte 0"
    );
    assert_eq!(text("b32enc", &[s("hello")]), "NBSWY3DP");
    assert_eq!(text("b32dec", &[s("NBSWY3DP")]), "hello");
    assert_eq!(
        text("sha1sum", &[s("abc")]),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        text("sha256sum", &[s("abc")]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(text("adler32sum", &[s("Wikipedia")]), "300286872");
    assert_eq!(
        text("htpasswd", &[s("user"), s("pass"), s("sha")]),
        "user:{SHA}nU4eI71bcnBGqeO0t9tXvY1u5oQ="
    );
    assert!(text("htpasswd", &[s("user"), s("pass"), s("bcrypt")]).starts_with("user:$2a$10$"));
    let uuid = text("uuidv4", &[]);
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4");
    let ca = call("genCA", &[s("ca"), i(365)]).unwrap();
    let Value::Object(object) = &ca else {
        panic!("genCA returns an object")
    };
    assert!(
        object
            .field("Cert")
            .unwrap()
            .to_go_string()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
    assert!(
        call(
            "genSignedCert",
            &[s("x"), Value::Nil, Value::list(vec![]), i(1), ca.clone()]
        )
        .is_ok(),
        "nil IP and DNS lists are empty lists (Bitnami charts pass nil)"
    );
    assert!(
        call(
            "genSignedCert",
            &[s("x"), Value::list(vec![]), Value::list(vec![]), i(1), ca]
        )
        .is_ok()
    );
}

#[test]
fn regex_functions() {
    assert_eq!(text("regexMatch", &[s("^[a-z]+\\d$"), s("abc1")]), "true");
    assert_eq!(text("regexMatch", &[s("\\d"), s("٣")]), "false");
    assert_eq!(
        text("regexFindAll", &[s("[2,4,6,8]"), s("123456789"), i(-1)]),
        "[2 4 6 8]"
    );
    assert_eq!(
        text("regexFind", &[s("[a-zA-Z][1-9]"), s("abcd1234")]),
        "d1"
    );
    assert_eq!(
        text(
            "regexReplaceAll",
            &[s("a(x*)b"), s("-ab-axxb-"), s("${1}W")]
        ),
        "-W-xxW-"
    );
    assert_eq!(
        text(
            "regexReplaceAllLiteral",
            &[s("a(x*)b"), s("-ab-axxb-"), s("${1}")]
        ),
        "-${1}-${1}-"
    );
    assert_eq!(text("regexSplit", &[s("z+"), s("pizza"), i(-1)]), "[pi a]");
    assert_eq!(text("regexSplit", &[s("z+"), s("pizza"), i(1)]), "[pizza]");
    assert_eq!(text("regexQuoteMeta", &[s("1.2.3")]), "1\\.2\\.3");
    assert_eq!(
        call("mustRegexFind", &[s("("), s("x")]).unwrap_err(),
        "error parsing regexp: missing closing ): `(`"
    );
}

#[test]
fn semver_constraints() {
    let check = |constraint: &str, version: &str| {
        text("semverCompare", &[s(constraint), s(version)]) == "true"
    };
    assert!(check(">=1.2.3", "1.2.3"));
    assert!(check("^1.2.0", "1.9.9"));
    assert!(!check("^1.2.0", "2.0.0"));
    assert!(check("~1.2.3", "1.2.9"));
    assert!(!check("~1.2.3", "1.3.0"));
    assert!(check("1.2.x", "1.2.7"));
    assert!(check("1.2 - 1.4", "1.3.5"));
    assert!(check(">1.0 <2.0 || >=3.0", "3.1.0"));
    assert!(check(">=1.0, <2.0", "1.5.0"));
    assert!(!check(">=1.21", "1.25.0-gke.1"));
    assert!(check(">=1.21-0", "1.25.0-gke.1"));
    assert!(check(">= 1.19.0-0", "v1.28.3"));
    assert!(check("!=1.2.3", "1.2.4"));
    assert!(check("*", "5.0.0"));
    assert!(check("^0.2.3", "0.2.9"));
    assert!(!check("^0.2.3", "0.3.0"));
    assert!(check("<=1.2", "1.2.9"));
    assert!(check(">1.2", "1.3.0"));
    assert!(!check(">1.2", "1.2.5"));
    assert!(
        call("semverCompare", &[s(">=1.2"), s("not-a-version")])
            .unwrap_err()
            .contains("Invalid Semantic Version")
    );
    assert!(
        call("semverCompare", &[s("=>>1"), s("1.0.0")])
            .unwrap_err()
            .starts_with("improper constraint")
    );
    let version = call("semver", &[s("v1.2.3-beta.1+build")]).unwrap();
    let Value::Object(object) = &version else {
        panic!("semver returns an object")
    };
    assert_eq!(object.field("Major").unwrap(), Value::int64(1));
    assert_eq!(object.field("Prerelease").unwrap(), s("beta.1"));
    assert_eq!(object.field("Metadata").unwrap(), s("build"));
    assert_eq!(version.to_go_string(), "1.2.3-beta.1+build");
}

#[test]
fn dates() {
    let epoch = Value::int64(1_700_000_000);
    assert_eq!(
        text("date", &[s("2006-01-02 15:04:05"), epoch.clone()]),
        "2023-11-14 22:13:20"
    );
    assert_eq!(
        text("date", &[s("Mon Jan _2 3:04PM MST 06"), epoch.clone()]),
        "Tue Nov 14 10:13PM UTC 23"
    );
    assert_eq!(text("htmlDate", std::slice::from_ref(&epoch)), "2023-11-14");
    let parsed = call("toDate", &[s("2006-01-02"), s("2017-12-31")]).unwrap();
    assert_eq!(parsed.to_go_string(), "2017-12-31 00:00:00 +0000 UTC");
    assert_eq!(
        text("unixEpoch", std::slice::from_ref(&parsed)),
        "1514678400"
    );
    let later = call("dateModify", &[s("1.5h"), parsed.clone()]).unwrap();
    assert_eq!(text("date", &[s("15:04"), later]), "01:30");
    assert_eq!(
        call("mustDateModify", &[s("x"), parsed]).unwrap_err(),
        "time: invalid duration \"x\""
    );
    assert_eq!(text("duration", &[s("95")]), "1m35s");
    assert_eq!(text("duration", &[Value::Int(95, IntKind::Int)]), "0s");
    assert_eq!(text("durationRound", &[s("2h10m5s")]), "2h");
    assert_eq!(text("durationRound", &[s("400000h")]), "45y");
    assert!(call("mustToDate", &[s("2006-01-02"), s("x")]).is_err());
}

#[test]
fn paths_and_urls() {
    assert_eq!(text("base", &[s("foo/bar/baz")]), "baz");
    assert_eq!(text("dir", &[s("foo/bar/baz")]), "foo/bar");
    assert_eq!(text("clean", &[s("foo/bar/../baz")]), "foo/baz");
    assert_eq!(text("ext", &[s("foo.bar")]), ".bar");
    assert_eq!(text("isAbs", &[s("/foo")]), "true");
    let parsed = call(
        "urlParse",
        &[s(
            "http://admin:secret@server.com:8080/api?list=false#anchor",
        )],
    )
    .unwrap();
    assert_eq!(
        parsed.to_go_string(),
        "map[fragment:anchor host:server.com:8080 hostname:server.com opaque: path:/api query:list=false scheme:http userinfo:admin:secret]"
    );
    assert_eq!(
        text("urlJoin", &[parsed]),
        "http://admin:secret@server.com:8080/api?list=false#anchor"
    );
}
