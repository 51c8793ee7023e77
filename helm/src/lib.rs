//! Helm charts rendered without Helm.
