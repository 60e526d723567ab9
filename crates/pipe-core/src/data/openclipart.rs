//! The Open Clip Art Library as Debian installs it (`openclipart-png`,
//! `openclipart-svg`): `root/png/<category>[/<sub>]/NAME.png`, with the SVG
//! twin at `root/svg/<same path>.svg`. Single label = the top-level category
//! folder; labels = the SVG's `dc:subject` keywords (lower-cased, trimmed,
//! empty ones dropped). A PNG without a readable SVG twin has no keywords,
//! and the listing's notes count such images.

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
    // PNGs whose SVG twin is missing, and those whose twin cannot be read.
    let (mut missing, mut unreadable): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for (label, files) in class_folders(&png)? {
        for (path, is_link) in files {
            let rel = path.strip_prefix(&png).expect("below png/");
            let svg = root.join("svg").join(rel).with_extension("svg");
            let labels = match fsx::read_to_string(&svg) {
                Ok(text) => keywords(&text),
                Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => {
                    missing.push(svg.display().to_string());
                    Vec::new()
                }
                Err(e) => {
                    unreadable.push(format!("{} ({})", svg.display(), e.source));
                    Vec::new()
                }
            };
            listing.candidates.push(Candidate { source: Source::File(path), label: label.clone(), labels, is_link });
        }
    }
    for (list, what) in [(&missing, "without an SVG twin"), (&unreadable, "whose SVG twin cannot be read")] {
        if let Some(first) = list.first() {
            listing.notes.push(format!(
                "images {what}: {} (the first: {first}); they have no keywords and take no part in the multi-label task",
                list.len()
            ));
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

#[cfg(test)]
mod list_tests {
    use super::*;

    #[test]
    fn images_without_a_readable_svg_twin_are_counted() {
        let root = tempfile::tempdir().unwrap();
        for f in ["png/cat/a.png", "png/cat/b.png", "png/dog/c.png", "svg/cat/a.svg"] {
            let path = root.path().join(f);
            fsx::create_dir_all(path.parent().unwrap()).unwrap();
            fsx::write(&path, "<dc:subject><rdf:li>Red</rdf:li></dc:subject>").unwrap();
        }
        let listing = list(root.path()).unwrap();
        assert_eq!(listing.candidates.len(), 3);
        assert_eq!(listing.candidates.iter().filter(|c| c.labels == ["red"]).count(), 1);
        assert_eq!(listing.notes.len(), 1, "{:?}", listing.notes);
        let note = &listing.notes[0];
        assert!(
            note.starts_with("images without an SVG twin: 2 (the first: ") && note.ends_with("take no part in the multi-label task"),
            "{note}"
        );
    }
}
