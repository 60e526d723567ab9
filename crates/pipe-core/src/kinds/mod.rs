//! The registry of stage kinds: what each kind is called, what it consumes and
//! produces, its parameter schema, its implementation version, how many
//! threads it can use and which process runs it.
//!
//! The registry is data (one [`KindDef`] per kind), so `pipe check`, `pipe
//! stages`, key computation and the scheduler all read the same definitions.
//! A kind's file in this folder is its registration: `build.rs` makes a
//! module of each file that defines a `pub static NAME: KindDef` and lists
//! those statics in `KINDS` (by file name), so no list here names a kind.

pub mod context;
pub mod grant;
pub mod params;
mod per_image;
#[cfg(feature = "test-kinds")]
pub mod testing;
#[cfg(any(test, feature = "test-kinds"))]
pub mod testutil;
pub mod typed;

pub use context::{InputArtifact, StageContext, StageError};
pub use params::{ParamDef, ParamType, ParamValue, Params};
pub use typed::{FloatOr, IntOr, Schema, StageParams};

/// The type of what a stage produces; inputs are checked against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactType {
    /// Decoded images with labels and splits (`load`, `augment`).
    Images,
    /// Keypoints and descriptors per image (`extract`).
    Features,
    /// A visual vocabulary (`cluster`).
    Vocabulary,
    /// One bag-of-words histogram per image (`encode`).
    Histograms,
    /// Single-label predictions with scores (`svm`, `cnn-stage1`, `cnn-stage2`).
    Predictions,
    /// Multi-label predictions with probabilities (`multilabel`).
    MultiLabelPredictions,
    /// Evaluated metrics (`evaluate`).
    Metrics,
    /// Whatever a `command` stage wrote (`produces = "files"`): cached and
    /// handed on as it is.
    Files,
    /// A list of numbers (test kinds only).
    #[cfg(feature = "test-kinds")]
    Numbers,
    /// A piece of text (test kinds only).
    #[cfg(feature = "test-kinds")]
    Text,
}

impl ArtifactType {
    pub fn describe(self) -> &'static str {
        match self {
            ArtifactType::Images => "images",
            ArtifactType::Features => "features",
            ArtifactType::Vocabulary => "a vocabulary",
            ArtifactType::Histograms => "histograms",
            ArtifactType::Predictions => "predictions",
            ArtifactType::MultiLabelPredictions => "multi-label predictions",
            ArtifactType::Metrics => "metrics",
            ArtifactType::Files => "files",
            #[cfg(feature = "test-kinds")]
            ArtifactType::Numbers => "numbers",
            #[cfg(feature = "test-kinds")]
            ArtifactType::Text => "text",
        }
    }

    /// The word a pipeline file writes for it (`produces = "multi-label-predictions"`).
    pub fn word(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).expect("artifact types serialise as words")
    }
}

/// A named input of a stage kind: `vocabulary = "vocab"` in the pipeline file.
#[derive(Debug, Clone, Copy)]
pub struct SlotDef {
    pub name: &'static str,
    pub accepts: &'static [ArtifactType],
    /// One stage, or a list of them, and what a list does in a matrix.
    pub many: Many,
    pub required: bool,
    pub doc: &'static str,
}

/// How many stages an input slot takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Many {
    /// Exactly one stage; in a matrix, one variant of it per variant of
    /// this stage.
    One,
    /// A list of stages (`predictions = ["svm", "cnn"]`), each with all of
    /// its matrix variants: what comparison kinds (`evaluate`) gather.
    Gather,
    /// A list of stages used together (`features = ["hog", "colour"]`); in a
    /// matrix each listed stage's variants are carried along, as for `One`.
    Together,
}

impl Many {
    /// Whether the slot takes a list.
    pub fn is_list(self) -> bool {
        self != Many::One
    }
}

/// How many threads a stage can make use of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadUse {
    /// Runs on one thread whatever it is given.
    Single,
    /// Spreads its work over every thread the scheduler grants (rayon, or
    /// OpenCV's threads); its output must not depend on how many.
    Parallel,
    /// Like `Parallel`, and takes slots freed while it runs: its parallel
    /// loops take a [`grant::Permit`] per work item (see [`grant`]).
    Elastic,
    /// Runs on exactly as many threads as its `threads` parameter says,
    /// because its output depends on the count (libtorch's reductions): the
    /// count is part of the key, and the scheduler reserves that many slots
    /// (at most `--jobs`) instead of granting a share.
    Keyed,
}

/// Which process runs a stage, and with it, what the engine links.
///
/// Linking is a start-up cost paid by every process: libtorch ~0.26 s and
/// ~111 MiB, Debian's OpenCV imgcodecs (140 shared libraries) ~70 ms and
/// ~56 MiB, against ~2 ms for the engine alone. So the `pipe` engine links
/// neither: kinds that need OpenCV run in `pipe-worker`, kinds that need
/// libtorch in `pipe-torch`, both spawned per stage run. Their functions are
/// found by name in `pipe_cv::kinds::runner` and in `pipe-torch`, which only
/// those executables reference: Cargo keeps OpenCV and libtorch out of `pipe`.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    /// Inside the engine process (pure Rust, cheap to link).
    Engine(RunFn),
    /// In the `pipe-worker` executable (OpenCV, Polars; and `command`
    /// stages, which it starts and watches).
    OpenCv,
    /// In the `pipe-torch` executable (libtorch).
    Torch,
}

impl Process {
    /// The executable that runs the kind's stages outside the engine
    /// (beside the engine's own): `pipe-torch` for libtorch kinds,
    /// `pipe-worker` for the others (engine kinds go there as cluster jobs).
    pub fn worker_executable(&self) -> &'static str {
        match self {
            Process::Torch => "pipe-torch",
            Process::Engine(_) | Process::OpenCv => "pipe-worker",
        }
    }
}

/// A worker executable's run functions, keyed by the kinds' definitions:
/// naming a definition that does not exist is a compile error, and no kind
/// name is written twice.
pub type Runners = &'static [(&'static KindDef, RunFn)];

/// The run function `runners` holds for the kind named `name`.
pub fn runner_in(runners: Runners, name: &str) -> Option<RunFn> {
    runners.iter().find(|(def, _)| def.name == name).map(|(_, run)| *run)
}

/// The test kinds that run in `pipe-worker` (test builds only; none
/// otherwise); the worker's own kinds are in `pipe_cv::kinds::runner`.
#[cfg(feature = "test-kinds")]
pub static TEST_WORKER_RUNNERS: Runners = &[(&testing::WORKER, testing::run_worker), (&testing::ELASTIC, testing::run_elastic)];
#[cfg(not(feature = "test-kinds"))]
pub static TEST_WORKER_RUNNERS: Runners = &[];

/// The function that does a stage's work: read the inputs, write the output
/// folder. It must check `ctx.check_cancelled()` between units of work.
pub type RunFn = fn(&mut StageContext) -> Result<(), StageError>;

/// Everything the engine knows about one stage kind.
#[derive(Debug)]
pub struct KindDef {
    pub name: &'static str,
    /// Bump when the implementation's output changes: it is part of every key.
    pub version: u32,
    pub summary: &'static str,
    pub inputs: &'static [SlotDef],
    pub output: ArtifactType,
    /// The parameters: schema, rules across them, and how the engine reads
    /// epochs and keyed threads (see [`typed`]).
    pub params: Schema,
    pub threads: ThreadUse,
    /// Typical seconds of one run on the default pipeline's data (of one
    /// epoch, for kinds with an `epochs` parameter): the scheduler's
    /// estimate for ordering stages critical-path first, until a recorded
    /// run of the stage gives a better one. See `StageSpec::estimate` (spec).
    pub estimate_seconds: f64,
    pub process: Process,
    /// The output mentions the input stages by name (evaluate's approach
    /// column), so their names are part of the key: a rename re-runs it.
    pub names_inputs: bool,
    /// What a Slurm job of this kind requests unless the pipeline says otherwise.
    pub job: JobDefaults,
    /// Whether `[pipeline] repeats` repeats it, and with what.
    pub repeats: RepeatsWith,
    /// What `pipe predict` does with its stages on the way to an
    /// approach's predictions for new images.
    pub new_images: NewImages,
}

/// What `pipe predict` does with a stage of a kind when it applies a
/// trained approach to new images (see `spec::predict`): each stage the
/// approach reads is replayed on the new images, or used as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewImages {
    /// It reads the collection (`load`): it reads the new images' folder
    /// instead, decoded as its own images were; its entry of the training
    /// run is its input [`MODEL_SLOT`] (the class names).
    Read,
    /// Its output for an image depends on that image alone, or on other
    /// stages' outputs for it (features, `ensemble`): it runs on the new
    /// images as it is.
    Rerun,
    /// It learned from the training split (the classifiers, `encode`'s
    /// idf): it runs on the new images with its entry of the training run as
    /// input [`MODEL_SLOT`], and applies what that entry holds.
    Apply,
    /// It changes the training split only (`augment`): new images pass
    /// through it unchanged.
    PassThrough,
    /// It learned from the training split and describes no image
    /// (`cluster`'s vocabulary): its entry is used as it is.
    Reuse,
    /// `pipe predict` cannot replay it (`evaluate`, `command` stages).
    Unsupported,
}

/// The input slot through which `pipe predict` hands a [`NewImages::Read`]
/// or [`NewImages::Apply`] stage its own entry of the training run.
pub const MODEL_SLOT: &str = "model";

/// What `[pipeline] repeats` does to a kind's stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatsWith {
    /// Nothing: its output does not depend on the seed.
    Never,
    /// One variant per repeat, each with its own seed: it trains with it.
    Seed,
    /// Repeated only with `resplit = true`: it draws the split.
    Split,
}

impl KindDef {
    /// What a definition does not say: version 1, no inputs, no parameters,
    /// one thread, in `pipe-worker`, a worker's Slurm request, never
    /// repeated, not naming its inputs. A definition states what differs
    /// and ends with `..KindDef::BASE`.
    pub const BASE: KindDef = KindDef {
        name: "",
        version: 1,
        summary: "",
        inputs: &[],
        output: ArtifactType::Files,
        params: Schema::of::<typed::NoParams>(),
        threads: ThreadUse::Single,
        estimate_seconds: 1.0,
        process: Process::OpenCv,
        names_inputs: false,
        job: JobDefaults::WORKER,
        repeats: RepeatsWith::Never,
        new_images: NewImages::Unsupported,
    };
}

/// A kind's default Slurm request besides CPUs (those follow
/// [`ThreadUse`]) and GPUs (one when its `device` parameter is `"cuda"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobDefaults {
    pub mem_mb: u64,
    pub minutes: u64,
}

impl JobDefaults {
    /// OpenCV and Polars stages: features, vocabularies, SVMs, reports.
    pub const WORKER: JobDefaults = JobDefaults { mem_mb: 2048, minutes: 120 };
    /// `load` decodes every image of the data set.
    pub const LOAD: JobDefaults = JobDefaults { mem_mb: 4096, minutes: 120 };
    /// Training: AlexNet for 20 epochs takes hours on a CPU.
    pub const TORCH: JobDefaults = JobDefaults { mem_mb: 8192, minutes: 720 };
}

/// For kinds whose parameters need no rule beyond their types.
pub fn no_check(_: &Params) -> Vec<String> {
    Vec::new()
}

impl KindDef {
    pub fn param(&self, name: &str) -> Option<&ParamDef> {
        self.params.iter().find(|p| p.name == name)
    }

    pub fn slot(&self, name: &str) -> Option<&SlotDef> {
        self.inputs.iter().find(|s| s.name == name)
    }

    /// The `command` kind: its inputs, parameters and output are the
    /// stage's own (see [`command`]), not the definition's.
    pub fn is_command(&self) -> bool {
        std::ptr::eq(self, &command::COMMAND)
    }
}

/// The input of the per-image descriptor kinds.
const IMAGES_TO_DESCRIBE: &[SlotDef] = &[SlotDef {
    name: "images",
    accepts: &[ArtifactType::Images],
    many: Many::One,
    required: true,
    doc: "the images (a load or augment stage)",
}];

/// The definition of a per-image descriptor kind (`hog`, `colour`, `lbp`):
/// images in, one vector per image out as histograms (for `svm`), run
/// inside the engine (pure Rust) with its images spread over the granted
/// threads.
pub const fn per_image_descriptor(name: &'static str, summary: &'static str, params: Schema, estimate_seconds: f64, run: RunFn) -> KindDef {
    KindDef {
        name,
        summary,
        inputs: IMAGES_TO_DESCRIBE,
        output: ArtifactType::Histograms,
        params,
        threads: ThreadUse::Elastic,
        estimate_seconds,
        process: Process::Engine(run),
        new_images: NewImages::Rerun,
        ..KindDef::BASE
    }
}

// The kinds' modules (`pub mod load;`, ...) and `static KINDS`, one entry
// per `pub static NAME: KindDef` of a file of this folder: a kind is
// registered by its definition's file alone (see build.rs).
include!(concat!(env!("OUT_DIR"), "/kinds.rs"));

#[cfg(test)]
#[path = "../../build/registry.rs"]
mod generated_registry;

/// Every stage kind this build can run.
pub fn registry() -> &'static [&'static KindDef] {
    #[cfg(feature = "test-kinds")]
    {
        static ALL: std::sync::LazyLock<Vec<&'static KindDef>> =
            std::sync::LazyLock::new(|| KINDS.iter().chain(testing::KINDS).copied().collect());
        &ALL
    }
    #[cfg(not(feature = "test-kinds"))]
    {
        KINDS
    }
}

/// Looks a kind up by name.
pub fn kind(name: &str) -> Option<&'static KindDef> {
    registry().iter().copied().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each definition is self-consistent: unique names, defaults that pass
    /// their own schema, slot names that do not collide with parameters.
    #[test]
    fn every_kinds_defaults_travel_to_a_worker_and_back() {
        // The engine sends a job's parameters as JSON; defaults must be valid values there too.
        for k in registry() {
            let json = testutil::defaults(k);
            let params = Params::from_json(k, &json).unwrap_or_else(|e| panic!("{}: {e}", k.name));
            assert_eq!(params.to_json(), json, "{}", k.name);
        }
    }

    #[test]
    fn every_kinds_schema_and_struct_agree() {
        // Defaults (required choices at their first word) read back as the
        // kind's struct: a field the schema lacks, or a type that does not
        // fit, shows up as a "stage kind bug" from its rules.
        for k in registry() {
            let mut json = testutil::defaults(k);
            for d in k.params.iter() {
                if let (params::Default::Required, ParamType::Choice(words)) = (d.default, d.ty) {
                    json[d.name] = words[0].into();
                }
            }
            let params = Params::from_json(k, &json).unwrap();
            let bugs: Vec<String> = k.params.check(&params).into_iter().filter(|m| m.contains("stage kind bug")).collect();
            assert!(bugs.is_empty(), "{}: {bugs:?}", k.name);
        }
    }

    #[test]
    fn registry_definitions_are_consistent() {
        let mut names = std::collections::BTreeSet::new();
        for k in registry() {
            assert!(names.insert(k.name), "duplicate kind {}", k.name);
            let mut keys = std::collections::BTreeSet::new();
            for p in k.params.iter() {
                assert!(keys.insert(p.name), "{}: duplicate key {}", k.name, p.name);
                assert!(!["kind", "inputs"].contains(&p.name), "{}: reserved key {}", k.name, p.name);
            }
            for s in k.inputs {
                assert!(keys.insert(s.name), "{}: slot {} collides", k.name, s.name);
                assert!(!s.accepts.is_empty());
            }
        }
    }

    #[test]
    fn every_kind_of_the_product_brief_is_here() {
        for name in ["load", "augment", "extract", "cluster", "encode", "svm", "cnn-stage1", "cnn-stage2", "multilabel", "evaluate"] {
            assert!(kind(name).is_some(), "{name}");
        }
    }
}
