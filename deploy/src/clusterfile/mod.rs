//! The Clusterfile: its documents read with positions and validated.
