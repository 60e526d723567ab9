//! Reading TOML values of a pipeline file, shared by the readers of its
//! tables (`parse`, `matrix`, `resources`, `command`): a spanned value as a
//! [`RawValue`], a stage's input references, the rule for names, and
//! diagnostics' default hints.

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::{Diagnostic, InputRef};
use crate::kinds::params::RawValue;

pub(super) trait HintIfNone {
    fn hint_if_none(self, hint: &str) -> Self;
}

impl HintIfNone for Diagnostic {
    fn hint_if_none(self, hint: &str) -> Self {
        if self.hint.is_some() { self } else { self.hint(hint) }
    }
}

pub(super) const NAME_RULE: &str = "use letters, digits, `-` and `_` (it names folders under the cache and reports)";

pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-')
}

pub(super) fn input_refs(
    stage: &str,
    slot: &str,
    many: bool,
    value: &Spanned<DeValue>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Vec<InputRef>> {
    let expected = if many { "a stage name or a list of stage names" } else { "a stage name" };
    let bad = |errors: &mut Vec<Diagnostic>, span: Range<usize>| {
        errors.push(Diagnostic::new(span, format!("stage `{stage}`: input `{slot}` must be {expected}")));
        None
    };
    match value.get_ref() {
        DeValue::String(s) => Some(vec![InputRef { stage: s.to_string(), span: value.span() }]),
        DeValue::Array(items) if many => {
            if items.is_empty() {
                return bad(errors, value.span());
            }
            let mut refs = Vec::new();
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => refs.push(InputRef { stage: s.to_string(), span: item.span() }),
                    _ => return bad(errors, item.span()),
                }
            }
            Some(refs)
        }
        _ => bad(errors, value.span()),
    }
}

/// A spanned TOML value as a [`RawValue`] for parameter checking.
pub(super) fn raw_value(value: &DeValue) -> RawValue {
    match value {
        DeValue::String(s) => RawValue::Str(s.to_string()),
        DeValue::Integer(i) => {
            let text = i.as_str().replace('_', "");
            let (neg, digits) = match text.strip_prefix('-') {
                Some(rest) => (true, rest.to_string()),
                None => (false, text.trim_start_matches('+').to_string()),
            };
            let digits = digits.trim_start_matches("0x").trim_start_matches("0o").trim_start_matches("0b");
            match i64::from_str_radix(digits, i.radix()) {
                Ok(v) => RawValue::Int(if neg { -v } else { v }),
                Err(_) => RawValue::Other("an integer too large"),
            }
        }
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().map_or(RawValue::Other("a malformed number"), RawValue::Float),
        DeValue::Boolean(b) => RawValue::Bool(*b),
        DeValue::Datetime(_) => RawValue::Other("a date"),
        DeValue::Array(items) => RawValue::Array(items.iter().map(|v| raw_value(v.get_ref())).collect()),
        DeValue::Table(_) => RawValue::Other("a table"),
    }
}
