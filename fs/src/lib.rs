//! FUSE filesystem over the engine: arrives with the mount issue.
