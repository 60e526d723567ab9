//! pipe-core: the engine of pipe, a declarative experiment-pipeline engine for image classification.
//!
//! The modules mirror the architecture: a TOML file becomes a typed spec
//! and its DAG ([`spec`]), every stage gets a key ([`keys`]), stage outputs
//! live in a content-addressed store ([`cache`]), one scheduler runs what is
//! not cached ([`exec`]), and every run leaves a record ([`record`]) and a
//! report ([`report`]). Stage kinds plug in through one registry ([`kinds`]). This crate never
//! depends on OpenCV or libtorch: the kinds that need them run in the
//! `pipe-worker` (crate `pipe-cv`) and `pipe-torch` executables.

pub mod cache;
pub mod data;
pub mod exec;
pub mod fsx;
pub mod keys;
pub mod kinds;
pub mod metrics;
pub mod record;
pub mod report;
pub mod rng;
pub mod spec;
pub mod suggest;
pub mod util;

/// Version of the on-disk formats (cache entries, keys, run records). Bumping
/// it gives every stage a new key, so old entries are never misread.
pub const FORMAT_VERSION: u32 = 1;
