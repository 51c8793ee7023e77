//! The Sprig template function library for gotemplate.
