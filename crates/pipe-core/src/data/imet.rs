//! The Kaggle iMet (FGVC6) layout of The Met's collection: `train.csv`
//! (`id,attribute_ids`, ids space-separated), `labels.csv`
//! (`attribute_id,attribute_name`), images at `train/<id>.png`.
//!
//! Labels = every attribute's name. The single label is chosen by a
//! documented rule: among the image's attributes (only those whose name
//! starts with `label_prefix`, when set), `most-frequent` takes the one most
//! frequent in the whole dataset (ties: the smaller id), `first` the first
//! listed. Images with no eligible attribute are left out and counted.

use std::collections::HashMap;
use std::path::Path;

use super::{BadItem, Candidate, DataError, Listing, Source};
use crate::fsx;

/// How the single label is picked from an image's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingleLabel {
    MostFrequent,
    First,
}

pub fn list(root: &Path, rule: SingleLabel, prefix: Option<&str>) -> Result<Listing, DataError> {
    let train_csv = root.join("train.csv");
    let labels_csv = root.join("labels.csv");
    for f in [&train_csv, &labels_csv] {
        if !f.is_file() {
            return Err(DataError::Unusable(format!(
                "{} is missing: an iMet folder has train.csv, labels.csv and train/<id>.png",
                f.display()
            )));
        }
    }
    let mut names: HashMap<String, String> = HashMap::new();
    let labels_text = fsx::read_to_string(&labels_csv)?;
    for (n, line) in labels_text.lines().enumerate().skip(1) {
        let fields = csv_fields(line);
        match fields.as_slice() {
            [id, name] if !id.trim().is_empty() => {
                names.insert(id.trim().to_string(), name.trim().to_string());
            }
            _ if line.trim().is_empty() => {}
            _ => {
                return Err(DataError::Unusable(format!(
                    "{}:{}: expected `attribute_id,attribute_name`, found `{line}`",
                    labels_csv.display(),
                    n + 1
                )));
            }
        }
    }
    let train_text = fsx::read_to_string(&train_csv)?;
    let mut rows: Vec<(usize, String, Vec<String>)> = Vec::new();
    let mut listing = Listing::default();
    for (n, line) in train_text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let where_ = format!("{}:{}", train_csv.display(), n + 1);
        let fields = csv_fields(line);
        let [id, attrs] = fields.as_slice() else {
            listing.bad.push(BadItem { item: where_, problem: format!("expected `id,attribute_ids`, found `{line}`") });
            continue;
        };
        let attrs: Vec<String> = attrs.split_whitespace().map(str::to_string).collect();
        if let Some(unknown) = attrs.iter().find(|a| !names.contains_key(*a)) {
            listing.bad.push(BadItem { item: where_, problem: format!("attribute id {unknown} is not in labels.csv") });
            continue;
        }
        let image = root.join("train").join(format!("{}.png", id.trim()));
        if !image.is_file() {
            listing.bad.push(BadItem { item: where_, problem: format!("{} does not exist", image.display()) });
            continue;
        }
        rows.push((n + 1, id.trim().to_string(), attrs));
    }
    let eligible = |a: &String| prefix.is_none_or(|p| names[a].starts_with(p));
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for (_, _, attrs) in &rows {
        for a in attrs.iter().filter(|a| eligible(a)) {
            *frequency.entry(a.as_str()).or_default() += 1;
        }
    }
    for (line, id, attrs) in &rows {
        let pick = match rule {
            SingleLabel::First => attrs.iter().find(|a| eligible(a)),
            SingleLabel::MostFrequent => attrs
                .iter()
                .filter(|a| eligible(a))
                .max_by(|a, b| frequency[a.as_str()].cmp(&frequency[b.as_str()]).then_with(|| id_order(b).cmp(&id_order(a)))),
        };
        let Some(pick) = pick else {
            listing.dropped.push(BadItem {
                item: format!("{}:{line}", train_csv.display()),
                problem: format!("no attribute starts with `{}`", prefix.unwrap_or_default()),
            });
            continue;
        };
        listing.candidates.push(Candidate {
            source: Source::File(root.join("train").join(format!("{id}.png"))),
            label: names[pick].clone(),
            labels: attrs.iter().map(|a| names[a].clone()).collect(),
            is_link: false,
        });
    }
    Ok(listing)
}

/// Numeric ids sort numerically, others as text.
fn id_order(id: &str) -> (u64, String) {
    (id.parse().unwrap_or(u64::MAX), id.to_string())
}

/// Splits one CSV line, honouring double quotes.
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_handle_quotes() {
        assert_eq!(csv_fields("1,\"culture::a, b\""), ["1", "culture::a, b"]);
        assert_eq!(csv_fields("x,\"say \"\"hi\"\"\""), ["x", "say \"hi\""]);
    }
}
