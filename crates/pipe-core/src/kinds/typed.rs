//! Typed stage parameters: a kind declares its parameters once, with
//! [`stage_params!`](crate::stage_params), as a plain struct (serde) whose fields carry their
//! type, range, default and doc. The macro derives the schema the engine
//! checks pipeline files against and `pipe stages KIND` prints; the kind's
//! run function reads the struct ([`super::StageContext::typed_params`]), so a
//! misspelt parameter name is a compile error. Choices are enums declared
//! with [`choice!`](crate::choice); a value that is a number or a word is an [`IntOr`] or a
//! [`FloatOr`].

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::params::{Default, ParamDef, ParamError, ParamType, Params};

/// A kind's parameters as one struct; implemented by [`stage_params!`](crate::stage_params).
pub trait StageParams: DeserializeOwned {
    /// Every parameter, in the order `pipe stages KIND` lists them.
    const SCHEMA: &'static [ParamDef];

    /// Rules across parameters (`root` needed for file datasets, fractions
    /// summing below one); each message becomes a `pipe check` error.
    fn check(&self) -> Vec<String> {
        Vec::new()
    }

    /// Passes over the data (training epochs), for the scheduler's estimate.
    fn epochs(&self) -> u64 {
        1
    }

    /// The thread count that is part of the key ([`super::ThreadUse::Keyed`]).
    fn keyed_threads(&self) -> Option<usize> {
        None
    }

    /// Whether a run with these parameters needs a GPU (a Slurm job asks for one).
    fn uses_gpu(&self) -> bool {
        false
    }
}

/// The parameters of a kind that has none of its own.
#[derive(Debug, Clone, Deserialize)]
pub struct NoParams {}

impl StageParams for NoParams {
    const SCHEMA: &'static [ParamDef] = &[];
}

/// What the engine needs of a kind's parameters, derived from its
/// [`StageParams`] struct: the schema and the struct's rules.
#[derive(Clone, Copy)]
pub struct Schema {
    pub defs: &'static [ParamDef],
    check: fn(&Params) -> Vec<String>,
    epochs: fn(&Params) -> u64,
    keyed_threads: fn(&Params) -> Option<usize>,
    uses_gpu: fn(&Params) -> bool,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.defs.iter().map(|d| d.name)).finish()
    }
}

impl std::ops::Deref for Schema {
    type Target = [ParamDef];
    fn deref(&self) -> &[ParamDef] {
        self.defs
    }
}

impl Schema {
    pub const fn of<P: StageParams>() -> Schema {
        Schema {
            defs: P::SCHEMA,
            check: check_of::<P>,
            epochs: epochs_of::<P>,
            keyed_threads: keyed_threads_of::<P>,
            uses_gpu: uses_gpu_of::<P>,
        }
    }

    /// The struct's rules; validated values that do not fit the struct (a
    /// kind whose schema and struct disagree) are reported too.
    pub fn check(&self, params: &Params) -> Vec<String> {
        (self.check)(params)
    }

    pub fn epochs(&self, params: &Params) -> u64 {
        (self.epochs)(params)
    }

    pub fn keyed_threads(&self, params: &Params) -> Option<usize> {
        (self.keyed_threads)(params)
    }

    pub fn uses_gpu(&self, params: &Params) -> bool {
        (self.uses_gpu)(params)
    }
}

fn check_of<P: StageParams>(params: &Params) -> Vec<String> {
    match params.typed::<P>() {
        Ok(p) => p.check(),
        Err(e) => vec![e.to_string()],
    }
}

fn epochs_of<P: StageParams>(params: &Params) -> u64 {
    params.typed::<P>().map_or(1, |p| p.epochs())
}

fn uses_gpu_of<P: StageParams>(params: &Params) -> bool {
    params.typed::<P>().is_ok_and(|p| p.uses_gpu())
}

fn keyed_threads_of<P: StageParams>(params: &Params) -> Option<usize> {
    params.typed::<P>().ok().and_then(|p| p.keyed_threads())
}

impl Params {
    /// The parameters as the kind's struct. They were validated against the
    /// struct's own schema, so an error here is a bug in the kind.
    pub fn typed<P: StageParams>(&self) -> Result<P, ParamError> {
        serde_json::from_value(self.to_json()).map_err(ParamError::Struct)
    }
}

/// `a` then `b`, for a struct that flattens a shared group of parameters.
pub const fn concat<const N: usize>(a: &[ParamDef], b: &[ParamDef]) -> [ParamDef; N] {
    assert!(a.len() + b.len() == N, "concat: wrong length");
    let filler = ParamDef { name: "", ty: ParamType::Bool, default: Default::Unset, doc: "" };
    let mut out = [filler; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - a.len()];
        i += 1;
    }
    out
}

/// An integer, or one of the words of the choice `W` (`keep = 2 | "all"`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum IntOr<W> {
    Int(i64),
    Word(W),
}

/// A number, or one of the words of the choice `W` (`threshold = 0.2 | "tune-global"`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum FloatOr<W> {
    Float(f64),
    Word(W),
}

/// Declares a choice parameter's enum: each variant with the word a
/// pipeline file writes. Gives `WORDS`, `TYPE` (its [`ParamType`]) and
/// `word()`.
#[macro_export]
macro_rules! choice {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        #[allow(dead_code)]
        impl $name {
            pub const WORDS: &'static [&'static str] = &[$($word),+];
            pub const TYPE: $crate::kinds::ParamType = $crate::kinds::ParamType::Choice(Self::WORDS);

            pub fn word(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }
        }
    };
}

/// Declares a kind's parameter struct and derives its schema. Each field:
/// its doc comment (the description `pipe stages KIND` prints), then
/// `name: RustType = ParamType => Default`. A trailing `..name: Group`
/// flattens a shared group (the CNN kinds' `Training`), whose parameters
/// follow the struct's own in the schema. An optional `rules { ... }` block
/// after the struct holds [`StageParams`] methods (`check`, `epochs`,
/// `keyed_threads`) that override the defaults; without one, a struct with
/// a flattened group takes the group's.
#[macro_export]
macro_rules! stage_params {
    // A struct with a flattened group and no rules of its own takes the
    // group's rules.
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident : $ty:ty = $pty:expr => $default:expr,
            )*
            .. $flat:ident : $flat_ty:ty $(,)?
        }
    ) => {
        $crate::stage_params! {
            $(#[$meta])*
            $vis struct $name {
                $($(#[doc = $doc])+ $field : $ty = $pty => $default,)*
                .. $flat : $flat_ty
            }
            rules {
                fn check(&self) -> Vec<String> {
                    $crate::kinds::StageParams::check(&self.$flat)
                }
                fn epochs(&self) -> u64 {
                    $crate::kinds::StageParams::epochs(&self.$flat)
                }
                fn keyed_threads(&self) -> Option<usize> {
                    $crate::kinds::StageParams::keyed_threads(&self.$flat)
                }
                fn uses_gpu(&self) -> bool {
                    $crate::kinds::StageParams::uses_gpu(&self.$flat)
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident : $ty:ty = $pty:expr => $default:expr,
            )*
            $(.. $flat:ident : $flat_ty:ty $(,)?)?
        }
        $(rules { $($rules:item)* })?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize)]
        $vis struct $name {
            $($(#[doc = $doc])+ pub $field: $ty,)*
            $(#[serde(flatten)] pub $flat: $flat_ty,)?
        }

        impl $crate::kinds::StageParams for $name {
            const SCHEMA: &'static [$crate::kinds::ParamDef] = {
                const OWN: &[$crate::kinds::ParamDef] = &[
                    $($crate::kinds::ParamDef { name: stringify!($field), ty: $pty, default: $default, doc: concat!($($doc),+).trim_ascii() },)*
                ];
                const REST: &[$crate::kinds::ParamDef] = $crate::stage_params!(@rest $($flat_ty)?);
                const ALL: [$crate::kinds::ParamDef; OWN.len() + REST.len()] = $crate::kinds::typed::concat(OWN, REST);
                &ALL
            };
            $($($rules)*)?
        }
    };
    (@rest $flat_ty:ty) => { <$flat_ty as $crate::kinds::StageParams>::SCHEMA };
    (@rest) => { &[] };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::ParamValue;

    crate::choice! {
        enum Colour { Red = "red", DeepBlue = "deep-blue" }
    }

    crate::stage_params! {
        struct Shared {
            /// passes
            /// over the data
            epochs: i64 = ParamType::Int { min: 1, max: 9 } => Default::Int(2),
        }
        rules {
            fn epochs(&self) -> u64 { self.epochs as u64 }
        }
    }

    crate::stage_params! {
        struct Example {
            /// a colour
            colour: Colour = Colour::TYPE => Default::Str("deep-blue"),
            /// how many, or all
            keep: IntOr<All> = ParamType::IntOrChoice { min: 1, max: 5, choices: All::WORDS } => Default::Str("all"),
            /// unset unless given
            root: Option<String> = ParamType::Text => Default::Unset,
            ..shared: Shared
        }
    }

    crate::choice! {
        enum All { All = "all" }
    }

    #[test]
    fn the_schema_is_the_struct_in_order_with_the_group_last() {
        let names: Vec<&str> = Example::SCHEMA.iter().map(|d| d.name).collect();
        assert_eq!(names, ["colour", "keep", "root", "epochs"]);
        assert_eq!(Example::SCHEMA[3].doc, "passes over the data");
        assert!(matches!(Example::SCHEMA[0].ty, ParamType::Choice(["red", "deep-blue"])));
    }

    #[test]
    fn validated_values_read_back_as_the_struct() {
        let mut p = Params::default();
        p.0.insert("colour".into(), ParamValue::Str("deep-blue".into()));
        p.0.insert("keep".into(), ParamValue::Int(3));
        p.0.insert("root".into(), ParamValue::Unset);
        p.0.insert("epochs".into(), ParamValue::Int(4));
        let e: Example = p.typed().unwrap();
        assert_eq!((e.colour, e.keep, e.root, e.shared.epochs), (Colour::DeepBlue, IntOr::Int(3), None, 4));
        assert_eq!(Schema::of::<Example>().epochs(&p), 4, "without rules of its own, a struct takes its group's");
        p.0.insert("keep".into(), ParamValue::Str("all".into()));
        assert_eq!(p.typed::<Example>().unwrap().keep, IntOr::Word(All::All));
        p.0.insert("colour".into(), ParamValue::Str("green".into()));
        assert!(p.typed::<Example>().unwrap_err().to_string().starts_with("stage kind bug"));
    }
}
