//! The Sprig template function library (Masterminds/sprig v3, as Helm 3 exposes it) for
//! gotemplate.
//!
//! [`register`] adds Sprig's generic functions, minus `env` and `expandenv` (which Helm
//! removes) and the JSON/YAML/TOML functions (which Helm replaces). Arguments follow Go's
//! rules: typed parameters reject other types as Go's template engine does, `interface{}`
//! parameters convert as spf13/cast does, and results carry Go's types (`int`, `int64`,
//! `float64`, ...). Random functions are deterministic (see [`random`]); dates are in UTC.

mod args;
mod dates;
mod dicts;
mod encoding;
mod flow;
mod lists;
mod math;
mod paths;
pub mod random;
mod regex;
pub mod semver;
mod strings;

pub use dates::{Time, time_value};

/// Registers every Sprig function under its Sprig name.
pub fn register(functions: &mut gotemplate::Functions) {
    strings::register(functions);
    lists::register(functions);
    dicts::register(functions);
    math::register(functions);
    flow::register(functions);
    encoding::register(functions);
    regex::register(functions);
    semver::register(functions);
    dates::register(functions);
    paths::register(functions);
}

#[cfg(test)]
mod tests;
