//! The Open Clip Art Library as Debian installs it (`openclipart-png`,
//! `openclipart-svg`): `root/png/<category>[/<sub>]/NAME.png`, with the SVG
//! twin at `root/svg/<same path>.svg`. Single label = the top-level category
//! folder; labels = the SVG's `dc:subject` keywords (lower-cased, trimmed,
//! empty ones dropped). A PNG without an SVG twin has no keywords.

use std::path::Path;

use super::folder::class_folders;
use super::{Candidate, DataError, Listing, Source};
use crate::fsx;

pub fn list(root: &Path) -> Result<Listing, DataError> {
    let png = root.join("png");
    if !png.is_dir() {
        return Err(DataError::Unusable(format!(
            "{} has no png/ folder: install the collection (`apt-get install openclipart-png openclipart-svg`, done by `make setup`) or point `root` at it",
            root.display()
        )));
    }
    let mut listing = Listing::default();
    for (label, files) in class_folders(&png)? {
        for (path, is_link) in files {
            let rel = path.strip_prefix(&png).expect("below png/");
            let svg = root.join("svg").join(rel).with_extension("svg");
            let labels = fsx::read_to_string(&svg).map(|t| keywords(&t)).unwrap_or_default();
            listing.candidates.push(Candidate { source: Source::File(path), label: label.clone(), labels, is_link });
        }
    }
    Ok(listing)
}

/// The `<rdf:li>` items inside `<dc:subject>`, lower-cased, trimmed,
/// deduplicated, in order of appearance.
pub fn keywords(svg: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find("<dc:subject>") {
        let after = &rest[start + "<dc:subject>".len()..];
        let end = after.find("</dc:subject>").unwrap_or(after.len());
        let mut block = &after[..end];
        while let Some(li) = block.find("<rdf:li") {
            let tag_end = match block[li..].find('>') {
                Some(e) => li + e + 1,
                None => break,
            };
            let close = block[tag_end..].find("</rdf:li>").map_or(block.len(), |c| tag_end + c);
            let word = unescape(block[tag_end..close].trim()).to_lowercase();
            if !word.is_empty() && !out.contains(&word) {
                out.push(word);
            }
            block = &block[close.min(block.len())..];
            if let Some(rest_start) = block.find('>') {
                block = &block[rest_start + 1..];
            } else {
                break;
            }
        }
        rest = &after[end..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_read_from_dc_subject() {
        let svg = r#"<svg><dc:subject>
          <rdf:Bag>
            <rdf:li> Computer </rdf:li>
            <rdf:li></rdf:li>
            <rdf:li>network &amp; hub</rdf:li>
            <rdf:li>computer</rdf:li>
          </rdf:Bag>
        </dc:subject><dc:title>x</dc:title><rdf:li>not a subject</rdf:li></svg>"#;
        assert_eq!(keywords(svg), ["computer", "network & hub"]);
        assert!(keywords("<svg/>").is_empty());
    }
}
