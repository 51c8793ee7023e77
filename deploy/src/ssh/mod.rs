//! SSH to the cluster hosts.
