//! Parameter schemas and validated parameter values.
//!
//! A stage kind declares its parameters as data ([`ParamDef`]); the spec
//! checks every value against its [`ParamType`] and fills in defaults, so a
//! stage only ever sees a complete, typed [`Params`]. Values convert to a
//! canonical JSON form for keys: `1e-4` and `0.0001` are the same `f64`, an
//! integer written for a float parameter becomes that float, and a spelled-out
//! default equals an omitted one.

use std::collections::BTreeMap;

/// The type of one parameter, with its valid range.
#[derive(Debug, Clone, Copy)]
pub enum ParamType {
    Int {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    Bool,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Free text.
    Text,
    /// A filesystem path (a dataset's `root`), written relative to the
    /// pipeline file's folder (absolute paths and `~/` as they are); the
    /// stage receives the resolved path. When `fingerprint` is set, the
    /// content below it is folded into the key.
    Path {
        fingerprint: bool,
    },
    /// A file the stage reads (weights, code), written relative to the
    /// pipeline file's folder (absolute paths and `~/` as they are). Its
    /// content is folded into the key; the worker receives the resolved path.
    File,
    /// An integer in range, or one of a few words (`keep = 2 | "all"`).
    IntOrChoice {
        min: i64,
        max: i64,
        choices: &'static [&'static str],
    },
    /// A float in range, or one of a few words (`threshold = 0.2 | "tune-global"`).
    FloatOrChoice {
        min: f64,
        max: f64,
        choices: &'static [&'static str],
    },
    /// A list of floats, each in range (a grid of values).
    FloatList {
        min: f64,
        max: f64,
    },
}

impl ParamType {
    /// How the type reads in messages and in `pipe stages`.
    pub fn describe(&self) -> String {
        fn words(c: &[&str]) -> String {
            c.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" | ")
        }
        match *self {
            ParamType::Int { min, max } => format!("integer {}", range(min as f64, max as f64)),
            ParamType::Float { min, max } => format!("number {}", range(min, max)),
            ParamType::Bool => "true | false".into(),
            ParamType::Choice(c) => words(c),
            ParamType::Text => "text".into(),
            ParamType::Path { .. } => "path".into(),
            ParamType::File => "file (relative to the pipeline file)".into(),
            ParamType::IntOrChoice { min, max, choices } => {
                format!("integer {} or {}", range(min as f64, max as f64), words(choices))
            }
            ParamType::FloatOrChoice { min, max, choices } => {
                format!("number {} or {}", range(min, max), words(choices))
            }
            ParamType::FloatList { min, max } => format!("list of numbers {}", range(min, max)),
        }
    }
}

fn range(min: f64, max: f64) -> String {
    let bound = |v: f64| if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") };
    match (min.is_finite() && min > i64::MIN as f64, max.is_finite() && max < i64::MAX as f64) {
        (true, true) => format!("in {}..={}", bound(min), bound(max)),
        (true, false) => format!(">= {}", bound(min)),
        (false, true) => format!("<= {}", bound(max)),
        (false, false) => String::new(),
    }
}

/// A default for a parameter that the pipeline file leaves out.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// The parameter must be given.
    Required,
    /// Absent means "not set" (the stage decides what that means).
    Unset,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'static str),
    Floats(&'static [f64]),
}

/// One parameter of a stage kind.
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    pub name: &'static str,
    pub ty: ParamType,
    pub default: Default,
    pub doc: &'static str,
}

/// A validated parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Floats(Vec<f64>),
    /// Any TOML value of a `command` stage's `[params]`, as canonical JSON
    /// (integers stay integers, floats are `f64`).
    Json(serde_json::Value),
    Unset,
}

impl ParamValue {
    /// The canonical JSON form hashed into keys and written to records.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::Int(i) => serde_json::Value::from(*i),
            ParamValue::Float(f) => float_json(*f),
            ParamValue::Bool(b) => serde_json::Value::from(*b),
            ParamValue::Str(s) => serde_json::Value::from(s.as_str()),
            ParamValue::Floats(v) => serde_json::Value::Array(v.iter().map(|f| float_json(*f)).collect()),
            ParamValue::Json(v) => v.clone(),
            ParamValue::Unset => serde_json::Value::Null,
        }
    }

    /// How the value reads in messages (`100`, `0.0001`, `"rbf"`).
    pub fn display(&self) -> String {
        self.to_json().to_string()
    }
}

fn float_json(f: f64) -> serde_json::Value {
    // Non-finite values are rejected by validation; keep the text form just in case.
    serde_json::Number::from_f64(f).map_or_else(|| serde_json::Value::from(f.to_string()), serde_json::Value::Number)
}

impl From<Default> for ParamValue {
    fn from(d: Default) -> Self {
        match d {
            Default::Required | Default::Unset => ParamValue::Unset,
            Default::Int(i) => ParamValue::Int(i),
            Default::Float(f) => ParamValue::Float(f),
            Default::Bool(b) => ParamValue::Bool(b),
            Default::Str(s) => ParamValue::Str(s.to_string()),
            Default::Floats(v) => ParamValue::Floats(v.to_vec()),
        }
    }
}

/// The complete, validated parameters of one stage (defaults filled in).
#[derive(Debug, Clone, PartialEq, std::default::Default)]
pub struct Params(pub BTreeMap<String, ParamValue>);

impl Params {
    pub fn get(&self, name: &str) -> &ParamValue {
        self.0.get(name).unwrap_or(&ParamValue::Unset)
    }

    /// An integer parameter; the schema guarantees the type, so a mismatch is
    /// a bug in the stage kind, reported as such.
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            ParamValue::Int(i) => *i,
            other => panic!("stage kind bug: parameter `{name}` is {other:?}, not an integer"),
        }
    }

    pub fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            ParamValue::Float(f) => *f,
            ParamValue::Int(i) => *i as f64,
            other => panic!("stage kind bug: parameter `{name}` is {other:?}, not a number"),
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        match self.get(name) {
            ParamValue::Bool(b) => *b,
            other => panic!("stage kind bug: parameter `{name}` is {other:?}, not a boolean"),
        }
    }

    /// A text, choice or path parameter; `None` when unset.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            ParamValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.0.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
    }

    /// Reads back parameters written by [`Params::to_json`] (worker jobs),
    /// checking them against the kind's schema again. A parameter the
    /// document leaves out takes the kind's default (a job written by hand
    /// names only what it changes); `null` means unset.
    pub fn from_json(kind: &super::KindDef, json: &serde_json::Value) -> Result<Params, ParamError> {
        let mut out = BTreeMap::new();
        if kind.is_command() {
            // A command stage's parameters are the user's, whatever they are.
            for (name, value) in json.as_object().into_iter().flatten() {
                out.insert(name.clone(), ParamValue::Json(value.clone()));
            }
            return Ok(Params(out));
        }
        for def in kind.params.iter() {
            let Some(v) = json.get(def.name) else {
                out.insert(def.name.to_string(), ParamValue::from(def.default));
                continue;
            };
            let raw = match v {
                serde_json::Value::Null => {
                    out.insert(def.name.to_string(), ParamValue::Unset);
                    continue;
                }
                serde_json::Value::Bool(b) => RawValue::Bool(*b),
                serde_json::Value::Number(n) => n.as_i64().map_or_else(|| RawValue::Float(n.as_f64().unwrap_or(f64::NAN)), RawValue::Int),
                serde_json::Value::String(s) => RawValue::Str(s.clone()),
                serde_json::Value::Array(items) => {
                    RawValue::Array(items.iter().map(|i| i.as_f64().map_or(RawValue::Other("a non-number"), RawValue::Float)).collect())
                }
                serde_json::Value::Object(_) => RawValue::Other("a table"),
            };
            let value = check_value(&def.ty, &raw).map_err(|e| ParamError::Invalid { name: def.name, problem: e.0 })?;
            out.insert(def.name.to_string(), value);
        }
        Ok(Params(out))
    }
}

/// Parameters that do not fit their kind: a value in a worker's job file
/// outside its schema, or validated values its kind's struct cannot take.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error("parameter `{name}`: {problem}")]
    Invalid { name: &'static str, problem: String },
    #[error("stage kind bug: its parameters do not fit its struct: {0}")]
    Struct(#[source] serde_json::Error),
}

/// Why a written value does not fit its parameter.
#[derive(Debug, PartialEq)]
pub struct ValueError(pub String);

/// A raw value read from the pipeline file, before checking.
#[derive(Debug, Clone)]
pub enum RawValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<RawValue>),
    /// Anything else (tables, dates), named for the message.
    Other(&'static str),
}

impl RawValue {
    fn type_name(&self) -> &'static str {
        match self {
            RawValue::Int(_) => "an integer",
            RawValue::Float(_) => "a number",
            RawValue::Bool(_) => "a boolean",
            RawValue::Str(_) => "a string",
            RawValue::Array(_) => "a list",
            RawValue::Other(what) => what,
        }
    }
}

/// Checks `raw` against `ty`, returning the canonical value.
pub fn check_value(ty: &ParamType, raw: &RawValue) -> Result<ParamValue, ValueError> {
    let wrong = || ValueError(format!("expected {}, found {}", ty.describe(), raw.type_name()));
    let in_int = |i: i64, min: i64, max: i64| {
        if (min..=max).contains(&i) {
            Ok(ParamValue::Int(i))
        } else {
            Err(ValueError(format!("{i} is out of range: expected {}", ty.describe())))
        }
    };
    let in_float = |f: f64, min: f64, max: f64| {
        if f.is_finite() && f >= min && f <= max {
            Ok(ParamValue::Float(f))
        } else {
            Err(ValueError(format!("{f} is out of range: expected {}", ty.describe())))
        }
    };
    let choice = |s: &str, choices: &[&str]| {
        if choices.contains(&s) {
            Ok(ParamValue::Str(s.to_string()))
        } else {
            let hint = crate::suggest::nearest(s, choices.iter().copied()).map(|n| format!(" (did you mean \"{n}\"?)")).unwrap_or_default();
            Err(ValueError(format!("\"{s}\" is not one of {}{hint}", ty.describe())))
        }
    };
    match (ty, raw) {
        (ParamType::Int { min, max }, RawValue::Int(i)) => in_int(*i, *min, *max),
        (ParamType::Float { min, max }, RawValue::Float(f)) => in_float(*f, *min, *max),
        (ParamType::Float { min, max }, RawValue::Int(i)) => in_float(*i as f64, *min, *max),
        (ParamType::Bool, RawValue::Bool(b)) => Ok(ParamValue::Bool(*b)),
        (ParamType::Choice(c), RawValue::Str(s)) => choice(s, c),
        (ParamType::Text, RawValue::Str(s)) => Ok(ParamValue::Str(s.clone())),
        (ParamType::Path { .. } | ParamType::File, RawValue::Str(s)) if !s.trim().is_empty() => Ok(ParamValue::Str(s.clone())),
        (ParamType::IntOrChoice { min, max, .. }, RawValue::Int(i)) => in_int(*i, *min, *max),
        (ParamType::IntOrChoice { choices, .. }, RawValue::Str(s)) => choice(s, choices),
        (ParamType::FloatOrChoice { min, max, .. }, RawValue::Float(f)) => in_float(*f, *min, *max),
        (ParamType::FloatOrChoice { min, max, .. }, RawValue::Int(i)) => in_float(*i as f64, *min, *max),
        (ParamType::FloatOrChoice { choices, .. }, RawValue::Str(s)) => choice(s, choices),
        (ParamType::FloatList { min, max }, RawValue::Array(items)) => {
            if items.is_empty() {
                return Err(ValueError(format!("the list is empty: expected {}", ty.describe())));
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let f = match item {
                    RawValue::Float(f) => *f,
                    RawValue::Int(i) => *i as f64,
                    _ => return Err(wrong()),
                };
                match in_float(f, *min, *max)? {
                    ParamValue::Float(f) => out.push(f),
                    _ => unreachable!("in_float returns a float"),
                }
            }
            Ok(ParamValue::Floats(out))
        }
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: ParamType = ParamType::Int { min: 1, max: 100_000 };
    const LR: ParamType = ParamType::Float { min: 0.0, max: 10.0 };

    #[test]
    fn numbers_are_canonical() {
        let a = check_value(&LR, &RawValue::Float(1e-4)).unwrap();
        let b = check_value(&LR, &RawValue::Float(0.0001)).unwrap();
        assert_eq!(a.to_json(), b.to_json());
        let c = check_value(&LR, &RawValue::Int(1)).unwrap();
        assert_eq!(c, ParamValue::Float(1.0));
    }

    #[test]
    fn ranges_and_types_are_enforced() {
        assert!(check_value(&WORDS, &RawValue::Int(0)).unwrap_err().0.contains("out of range"));
        let e = check_value(&WORDS, &RawValue::Str("100".into())).unwrap_err();
        assert_eq!(e.0, "expected integer in 1..=100000, found a string");
        assert!(check_value(&LR, &RawValue::Float(f64::NAN)).is_err());
        let kernel = ParamType::Choice(&["rbf", "linear"]);
        let e = check_value(&kernel, &RawValue::Str("rfb".into())).unwrap_err();
        assert!(e.0.contains("did you mean \"rbf\""), "{}", e.0);
        let grid = ParamType::FloatList { min: 0.0, max: f64::INFINITY };
        let ok = check_value(&grid, &RawValue::Array(vec![RawValue::Int(1), RawValue::Float(0.5)]));
        assert_eq!(ok.unwrap(), ParamValue::Floats(vec![1.0, 0.5]));
        assert!(check_value(&grid, &RawValue::Array(vec![])).is_err());
    }
}
