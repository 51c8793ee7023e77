//! YAML and JSON as Kubernetes tools read and write them.
