//! Semantic versions and constraints with Masterminds/semver v3.3 rules (the release Helm 3
//! builds with; what Sprig's `semver`/`semverCompare` and Helm's `kubeVersion` check use).

use std::cmp::Ordering;
use std::fmt;
use std::rc::Rc;
use std::sync::LazyLock;

use gotemplate::{Functions, Object, Value};
use regex::Regex;

use crate::args::{Outcome, fixed, go_quote, string};

/// Why a version or constraint did not parse (Masterminds' error texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SemverError(String);

/// A semantic version, as Masterminds' `NewVersion` reads it (partial and `v`-prefixed
/// versions and leading zeros are accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The major number.
    pub major: u64,
    /// The minor number (0 when absent).
    pub minor: u64,
    /// The patch number (0 when absent).
    pub patch: u64,
    /// The prerelease, without its `-`.
    pub prerelease: String,
    /// The build metadata, without its `+`.
    pub metadata: String,
    /// The text the version was parsed from.
    pub original: String,
}

const LOOSE_VERSION: &str = r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const CONSTRAINT_VERSION: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const OPERATORS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

fn compiled(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the semver patterns are valid")
}

static VERSION: LazyLock<Regex> = LazyLock::new(|| compiled(&format!("^{LOOSE_VERSION}$")));
static CONSTRAINT: LazyLock<Regex> =
    LazyLock::new(|| compiled(&format!(r"^\s*({OPERATORS})\s*({CONSTRAINT_VERSION})\s*$")));
static RANGE: LazyLock<Regex> = LazyLock::new(|| {
    compiled(&format!(
        r"\s*({CONSTRAINT_VERSION})\s+-\s+({CONSTRAINT_VERSION})\s*"
    ))
});
static FIND_CONSTRAINT: LazyLock<Regex> =
    LazyLock::new(|| compiled(&format!(r"({OPERATORS})\s*({CONSTRAINT_VERSION})")));
static VALID_CONSTRAINT: LazyLock<Regex> = LazyLock::new(|| {
    compiled(&format!(
        r"^(\s*({OPERATORS})\s*({CONSTRAINT_VERSION})\s*)((?:\s+|,\s*)({OPERATORS})\s*({CONSTRAINT_VERSION})\s*)*$"
    ))
});

const ALLOWED: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789";

fn invalid(message: &str) -> SemverError {
    SemverError(message.to_string())
}

fn validate_prerelease(prerelease: &str) -> Result<(), SemverError> {
    for part in prerelease.split('.') {
        if part.is_empty() {
            return Err(invalid("Invalid Prerelease string"));
        }
        if part.bytes().all(|byte| byte.is_ascii_digit()) {
            if part.len() > 1 && part.starts_with('0') {
                return Err(invalid("Version segment starts with 0"));
            }
        } else if !part.chars().all(|character| ALLOWED.contains(character)) {
            return Err(invalid("Invalid Prerelease string"));
        }
    }
    Ok(())
}

fn segment(text: &str) -> Result<u64, SemverError> {
    text.parse().map_err(|_| {
        SemverError(format!(
            "Error parsing version segment: strconv.ParseUint: parsing {}: value out of range",
            go_quote(text)
        ))
    })
}

impl Version {
    /// Parses a version (Masterminds' `NewVersion` with its default coercion).
    pub fn parse(text: &str) -> Result<Self, SemverError> {
        let captures = VERSION
            .captures(text)
            .ok_or_else(|| invalid("Invalid Semantic Version"))?;
        let group = |index: usize| captures.get(index).map_or("", |found| found.as_str());
        let version = Version {
            major: segment(group(1))?,
            minor: if group(2).is_empty() {
                0
            } else {
                segment(&group(2)[1..])?
            },
            patch: if group(3).is_empty() {
                0
            } else {
                segment(&group(3)[1..])?
            },
            prerelease: group(5).to_string(),
            metadata: group(8).to_string(),
            original: text.to_string(),
        };
        if !version.prerelease.is_empty() {
            validate_prerelease(&version.prerelease)?;
        }
        if version.metadata.split('.').any(str::is_empty) && !version.metadata.is_empty() {
            return Err(invalid("Invalid Metadata string"));
        }
        Ok(version)
    }

    /// Masterminds' `Compare`: precedence order, metadata ignored.
    pub fn compare(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(
                || match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    (false, false) => compare_prerelease(&self.prerelease, &other.prerelease),
                },
            )
    }
}

impl fmt::Display for Version {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.prerelease.is_empty() {
            write!(formatter, "-{}", self.prerelease)?;
        }
        if !self.metadata.is_empty() {
            write!(formatter, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let (a_parts, b_parts): (Vec<&str>, Vec<&str>) =
        (a.split('.').collect(), b.split('.').collect());
    for index in 0..a_parts.len().max(b_parts.len()) {
        let (a_part, b_part) = (
            a_parts.get(index).copied().unwrap_or(""),
            b_parts.get(index).copied().unwrap_or(""),
        );
        let order = compare_prerelease_part(a_part, b_part);
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

fn compare_prerelease_part(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if a.is_empty() {
        return Ordering::Less;
    }
    if b.is_empty() {
        return Ordering::Greater;
    }
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Err(_), Err(_)) => a.cmp(b),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Ok(a), Ok(b)) => {
            if a > b {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

/// One comparison of a constraint, such as `>=1.2` or `~1.x`.
#[derive(Debug, Clone)]
struct Comparison {
    operator: String,
    version: Version,
    minor_dirty: bool,
    patch_dirty: bool,
    dirty: bool,
}

fn is_wildcard(text: &str) -> bool {
    matches!(text, "x" | "X" | "*")
}

impl Comparison {
    fn parse(text: &str) -> Result<Self, SemverError> {
        let captures = CONSTRAINT
            .captures(text)
            .ok_or_else(|| SemverError(format!("improper constraint: {text}")))?;
        let group = |index: usize| captures.get(index).map_or("", |found| found.as_str());
        let (major, minor, patch, prerelease) = (group(3), group(4), group(5), group(6));
        let (mut minor_dirty, mut patch_dirty, mut dirty) = (false, false, false);
        let version = if is_wildcard(major) || major.is_empty() {
            dirty = true;
            format!("0.0.0{prerelease}")
        } else if is_wildcard(minor.trim_start_matches('.')) || minor.is_empty() {
            (minor_dirty, dirty) = (true, true);
            format!("{major}.0.0{prerelease}")
        } else if is_wildcard(patch.trim_start_matches('.')) || patch.is_empty() {
            (patch_dirty, dirty) = (true, true);
            format!("{major}{minor}.0{prerelease}")
        } else {
            group(2).to_string()
        };
        let version = Version::parse(&version).map_err(|_| invalid("constraint Parser Error"))?;
        Ok(Comparison {
            operator: group(1).to_string(),
            version,
            minor_dirty,
            patch_dirty,
            dirty,
        })
    }

    /// Whether `version` passes. A prerelease version only passes a comparison whose own
    /// version has a prerelease (`!=` checks this for wildcard comparisons only).
    fn check(&self, version: &Version) -> bool {
        let excluded_prerelease =
            !version.prerelease.is_empty() && self.version.prerelease.is_empty();
        if excluded_prerelease && (self.operator != "!=" || self.dirty) {
            return false;
        }
        let constraint = &self.version;
        let order = version.compare(constraint);
        match self.operator.as_str() {
            "" | "=" => {
                if self.dirty {
                    self.tilde(version)
                } else {
                    order == Ordering::Equal
                }
            }
            "!=" => self.not_equal(version),
            ">" => {
                if !self.dirty {
                    order == Ordering::Greater
                } else if version.major != constraint.major {
                    version.major > constraint.major
                } else if self.minor_dirty {
                    false
                } else if self.patch_dirty {
                    version.minor > constraint.minor
                } else {
                    order == Ordering::Greater
                }
            }
            "<" => order == Ordering::Less,
            ">=" | "=>" => order != Ordering::Less,
            "<=" | "=<" => {
                if self.dirty {
                    version.major < constraint.major
                        || (version.major == constraint.major
                            && (version.minor <= constraint.minor || self.minor_dirty))
                } else {
                    order != Ordering::Greater
                }
            }
            "~" | "~>" => self.tilde(version),
            _ => self.caret(version),
        }
    }

    fn not_equal(&self, version: &Version) -> bool {
        let constraint = &self.version;
        if self.dirty {
            if constraint.major != version.major {
                return true;
            }
            if constraint.minor != version.minor && !self.minor_dirty {
                return true;
            }
            if self.minor_dirty {
                return false;
            }
            if constraint.patch != version.patch && !self.patch_dirty {
                return true;
            }
            if self.patch_dirty {
                return (!version.prerelease.is_empty() || !constraint.prerelease.is_empty())
                    && compare_prerelease(&version.prerelease, &constraint.prerelease)
                        != Ordering::Equal;
            }
        }
        version.compare(constraint) != Ordering::Equal
    }

    fn tilde(&self, version: &Version) -> bool {
        let constraint = &self.version;
        if version.compare(constraint) == Ordering::Less {
            return false;
        }
        if constraint.major == 0
            && constraint.minor == 0
            && constraint.patch == 0
            && !self.minor_dirty
            && !self.patch_dirty
        {
            return true;
        }
        version.major == constraint.major && (version.minor == constraint.minor || self.minor_dirty)
    }

    fn caret(&self, version: &Version) -> bool {
        let constraint = &self.version;
        if version.compare(constraint) == Ordering::Less {
            return false;
        }
        if constraint.major > 0 || self.minor_dirty {
            return version.major == constraint.major;
        }
        if version.major > 0 {
            return false;
        }
        if constraint.minor > 0 || self.patch_dirty {
            return version.minor == constraint.minor;
        }
        if version.minor > 0 {
            return false;
        }
        version.patch == constraint.patch
    }
}

/// A constraint: comparisons joined by `,`/space (all must hold) and `||` (any group).
#[derive(Debug, Clone)]
pub struct Constraints {
    groups: Vec<Vec<Comparison>>,
}

/// Masterminds' `rewriteRange`: `1.2 - 1.4` becomes `>= 1.2, <= 1.4`.
fn rewrite_ranges(text: &str) -> String {
    let mut rewritten = text.to_string();
    for captures in RANGE.captures_iter(text) {
        let whole = captures.get(0).map_or("", |found| found.as_str());
        let (low, high) = (
            captures.get(1).map_or("", |found| found.as_str()),
            captures.get(11).map_or("", |found| found.as_str()),
        );
        rewritten = rewritten.replacen(whole, &format!(">= {low}, <= {high} "), 1);
    }
    rewritten
}

impl Constraints {
    /// Parses a constraint (Masterminds' `NewConstraint`).
    pub fn parse(text: &str) -> Result<Self, SemverError> {
        let rewritten = rewrite_ranges(text);
        let mut groups = Vec::new();
        for alternative in rewritten.split("||") {
            if !VALID_CONSTRAINT.is_match(alternative) {
                return Err(SemverError(format!("improper constraint: {alternative}")));
            }
            let mut parts: Vec<&str> = FIND_CONSTRAINT
                .find_iter(alternative)
                .map(|found| found.as_str())
                .collect();
            if parts.is_empty() {
                parts.push(alternative);
            }
            groups.push(
                parts
                    .into_iter()
                    .map(Comparison::parse)
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Ok(Constraints { groups })
    }

    /// Whether `version` satisfies the constraint. A prerelease version only satisfies
    /// comparisons that name a prerelease (`>=1.21-0`).
    pub fn check(&self, version: &Version) -> bool {
        self.groups.iter().any(|comparisons| {
            comparisons
                .iter()
                .all(|comparison| comparison.check(version))
        })
    }
}

/// The `*semver.Version` Sprig's `semver` returns.
struct VersionObject(Version);

impl Object for VersionObject {
    fn type_name(&self) -> &'static str {
        "*semver.Version"
    }

    fn kind(&self) -> &'static str {
        "ptr"
    }

    fn field(&self, name: &str) -> Option<Value> {
        let version = &self.0;
        let number = |value: u64| Value::int64(i64::try_from(value).unwrap_or(i64::MAX));
        Some(match name {
            "Major" => number(version.major),
            "Minor" => number(version.minor),
            "Patch" => number(version.patch),
            "Prerelease" => version.prerelease.as_str().into(),
            "Metadata" => version.metadata.as_str().into(),
            "Original" => version.original.as_str().into(),
            "String" => version.to_string().into(),
            _ => return None,
        })
    }

    fn call_method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        if args.is_empty() {
            return self.field(name).map(Ok);
        }
        let other = |value: &Value| match value {
            Value::String(text) => Version::parse(text).map_err(|error| error.to_string()),
            Value::Object(object) if object.type_name() == "*semver.Version" => {
                Version::parse(&object.display()).map_err(|error| error.to_string())
            }
            _ => Err(crate::args::wrong_type("*semver.Version", value)),
        };
        let order = |value: &Value| other(value).map(|other| self.0.compare(&other));
        Some(match (name, args) {
            ("Compare", [value]) => order(value).map(|order| Value::int(order as i64)),
            ("LessThan", [value]) => order(value).map(|order| (order == Ordering::Less).into()),
            ("GreaterThan", [value]) => {
                order(value).map(|order| (order == Ordering::Greater).into())
            }
            ("Equal", [value]) => order(value).map(|order| (order == Ordering::Equal).into()),
            _ => return None,
        })
    }

    fn display(&self) -> String {
        self.0.to_string()
    }

    fn to_data(&self) -> Value {
        self.0.to_string().into()
    }
}

pub(crate) fn register(functions: &mut Functions) {
    functions.insert("semver", |_, args| {
        let [text] = fixed("semver", args)?;
        let version = Version::parse(string(text)?).map_err(|error| error.to_string())?;
        Ok(Value::Object(Rc::new(VersionObject(version))))
    });
    functions.insert("semverCompare", semver_compare);
}

fn semver_compare(_: &mut dyn gotemplate::Runtime, args: &[Value]) -> Outcome {
    let [constraint, version] = fixed("semverCompare", args)?;
    let (constraint, version) = (string(constraint)?, string(version)?);
    let constraints = Constraints::parse(constraint).map_err(|error| error.to_string())?;
    let version = Version::parse(version).map_err(|error| error.to_string())?;
    Ok(constraints.check(&version).into())
}
