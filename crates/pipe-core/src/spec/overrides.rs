//! `--set STAGE.PARAM=VALUE` (`-S`, as `dvc exp run -S`): a value tried
//! without editing the pipeline file. The value is TOML (`-S svm.c=[1,10]`;
//! a bare word is a string, `-S svm.kernel=linear`). A list for a parameter
//! that is not a list sweeps it (`-S vocab.words=[50,100]`); a parameter
//! already swept gets its matrix replaced; `pipeline.seed=3` sets a
//! `[pipeline]` key; a command stage's own parameters live in its
//! `[params]` table. Overrides go through the same validation as the file:
//! a problem they cause reads "in --set vocab.words=abc: …".

use toml::{Table, Value};

use crate::kinds::ParamType;

/// One `--set`, as written and as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// `vocab.words=200`, as the user wrote it.
    pub written: String,
    /// The stage (or `pipeline`).
    pub stage: String,
    pub param: String,
    pub value: Value,
}

/// Keys of a command stage that are its own, not its program's parameters.
const COMMAND_KEYS: &[&str] = &["command", "produces", "code", "threads", "timeout", "repeats"];

impl Override {
    /// Reads `STAGE.PARAM=VALUE`.
    pub fn parse(written: &str) -> Result<Override, String> {
        let bad = || "expected STAGE.PARAM=VALUE (e.g. `-S vocab.words=200`, `-S svm.c=[1,10]`)".to_string();
        let (target, text) = written.split_once('=').ok_or_else(bad)?;
        let (stage, param) = target.trim().split_once('.').ok_or_else(bad)?;
        if stage.is_empty() || param.is_empty() || param.contains('.') {
            return Err(bad());
        }
        let value = match toml::from_str::<Table>(&format!("v = {text}")) {
            Ok(mut t) => t.remove("v").expect("the key just written"),
            // A bare word: Hydra's `kernel=linear`.
            Err(_) => Value::String(text.trim().to_string()),
        };
        Ok(Override { written: written.to_string(), stage: stage.trim().to_string(), param: param.trim().to_string(), value })
    }

    /// Applies this override to the document; an error names what is missing.
    pub fn apply(&self, doc: &mut Table) -> Result<(), String> {
        if self.stage == "pipeline" {
            let table = doc.entry("pipeline").or_insert_with(|| Value::Table(Table::new()));
            return match table {
                Value::Table(t) => {
                    t.insert(self.param.clone(), self.value.clone());
                    Ok(())
                }
                _ => Err("`pipeline` is not a table".into()),
            };
        }
        let names: Vec<String> = doc.get("stages").and_then(Value::as_table).map(|t| t.keys().cloned().collect()).unwrap_or_default();
        let Some(Value::Table(stage)) = doc.get_mut("stages").and_then(|s| s.as_table_mut()).and_then(|s| s.get_mut(&self.stage)) else {
            let hint = crate::suggest::nearest(&self.stage, names.iter().map(String::as_str))
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_else(|| format!(" (its stages: {})", names.join(", ")));
            return Err(format!("no stage `{}` in the pipeline{hint}", self.stage));
        };
        let kind = stage.get("kind").and_then(Value::as_str).and_then(crate::kinds::kind);
        let is_command = kind.is_some_and(|k| k.is_command());
        let swept = stage.get("matrix").and_then(Value::as_table).is_some_and(|m| m.contains_key(&self.param));
        // A list for a parameter that is not a list: a sweep.
        let list_type = kind.and_then(|k| k.param(&self.param)).is_some_and(|d| matches!(d.ty, ParamType::FloatList { .. }));
        let sweep = self.value.is_array() && (swept || (!is_command && !list_type));
        let own = if is_command && !COMMAND_KEYS.contains(&self.param.as_str()) { "params" } else { "" };
        if sweep {
            remove(stage, own, &self.param);
            table_in(stage, "matrix").insert(self.param.clone(), self.value.clone());
        } else {
            if swept {
                let matrix = table_in(stage, "matrix");
                matrix.remove(&self.param);
                if matrix.is_empty() {
                    stage.remove("matrix");
                }
            }
            let target = if own.is_empty() { stage } else { table_in(stage, own) };
            target.insert(self.param.clone(), self.value.clone());
        }
        Ok(())
    }

    /// The value as the user reads it (`200`, `[50, 100]`, `linear`).
    pub fn shown(&self) -> String {
        match &self.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// `stage[key]` as a table, made if absent.
fn table_in<'a>(stage: &'a mut Table, key: &str) -> &'a mut Table {
    let entry = stage.entry(key.to_string()).or_insert_with(|| Value::Table(Table::new()));
    if !entry.is_table() {
        *entry = Value::Table(Table::new());
    }
    entry.as_table_mut().expect("made a table above")
}

fn remove(stage: &mut Table, own: &str, param: &str) {
    if own.is_empty() {
        stage.remove(param);
    } else if let Some(Value::Table(t)) = stage.get_mut(own) {
        t.remove(param);
    }
}

/// The pipeline file's text with `overrides` applied, as TOML.
pub fn apply_all(source: &str, overrides: &[Override]) -> Result<String, (usize, String)> {
    let mut doc: Table = toml::from_str(source).map_err(|e| (0, format!("cannot read the file as a table: {e}")))?;
    for (i, o) in overrides.iter().enumerate() {
        o.apply(&mut doc).map_err(|e| (i, e))?;
    }
    Ok(toml::to_string(&doc).expect("a TOML table serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(source: &str, overrides: &[&str]) -> Table {
        let overrides: Vec<Override> = overrides.iter().map(|o| Override::parse(o).unwrap()).collect();
        toml::from_str(&apply_all(source, &overrides).unwrap()).unwrap()
    }

    const FILE: &str = "[stages.vocab]\nkind = \"cluster\"\nwords = 100\n[stages.svm]\nkind = \"svm\"\nc = [1.0]\n[stages.svm.matrix]\nfolds = [3, 5]\n\
                        [stages.cmd]\nkind = \"command\"\ncommand = [\"true\"]\nproduces = \"files\"\n";

    #[test]
    fn values_are_toml_and_bare_words_are_strings() {
        let o = Override::parse("svm.kernel=linear").unwrap();
        assert_eq!((o.stage.as_str(), o.param.as_str(), o.value.clone()), ("svm", "kernel", Value::String("linear".into())));
        assert_eq!(Override::parse("svm.c=[1, 10]").unwrap().value, Value::Array(vec![Value::Integer(1), Value::Integer(10)]));
        assert_eq!(Override::parse("vocab.words=200").unwrap().shown(), "200");
        for bad in ["words=200", "vocab.words", "=3", "a.b.c=1", ".x=1"] {
            assert!(Override::parse(bad).unwrap_err().starts_with("expected STAGE.PARAM=VALUE"), "{bad}");
        }
    }

    #[test]
    fn a_value_replaces_a_list_sweeps_and_a_command_param_goes_to_its_params() {
        let doc = set(FILE, &["vocab.words=200", "svm.c=[1, 10]", "svm.folds=4", "cmd.c=0.5", "cmd.threads=2", "pipeline.seed=3"]);
        assert_eq!(doc["stages"]["vocab"]["words"].as_integer(), Some(200));
        assert_eq!(doc["stages"]["svm"]["c"].as_array().unwrap().len(), 2, "a list parameter takes the list");
        assert_eq!(doc["stages"]["svm"]["folds"].as_integer(), Some(4));
        assert!(doc["stages"]["svm"].get("matrix").is_none(), "a plain value ends the sweep of that parameter");
        assert_eq!(doc["stages"]["cmd"]["params"]["c"].as_float(), Some(0.5));
        assert_eq!(doc["stages"]["cmd"]["threads"].as_integer(), Some(2));
        assert_eq!(doc["pipeline"]["seed"].as_integer(), Some(3));
        let swept = set(FILE, &["vocab.words=[50, 100]", "svm.folds=[2, 3]"]);
        assert!(swept["stages"]["vocab"].get("words").is_none());
        assert_eq!(swept["stages"]["vocab"]["matrix"]["words"].as_array().unwrap().len(), 2);
        assert_eq!(swept["stages"]["svm"]["matrix"]["folds"].as_array().unwrap()[0].as_integer(), Some(2));
    }

    #[test]
    fn a_misspelt_stage_gets_a_suggestion() {
        let o = Override::parse("vocabb.words=3").unwrap();
        let e = apply_all(FILE, &[o]).unwrap_err();
        assert_eq!(e, (0, "no stage `vocabb` in the pipeline (did you mean `vocab`?)".into()));
    }
}
