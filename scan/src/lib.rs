//! Image discovery for ClusterImages.
