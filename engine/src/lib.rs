//! The embedded build engine: runs a Kubefile's build plan without any daemon and writes the
//! resulting ClusterImage into the local store.
