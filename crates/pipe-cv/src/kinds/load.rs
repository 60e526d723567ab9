//! `load`: a dataset in, an `images` artifact out (see `pipe_core::data::dataset`).
//!
//! Steps: list the collection (reader per `dataset`), subsample (`limit`,
//! stratified, seeded), decode in parallel, set aside bad files
//! (`on_bad_image`), deduplicate by decoded-pixel hash (a kept copy prefers a
//! real file over a link, then the first path), keep labels used by at least
//! `min_label_count` images, drop or merge classes under `min_class_count`,
//! then split train/validation/test (stratified, seeded). Deduplication
//! happens before the split, so a duplicate can never sit on both sides.
//!
//! Memory stays flat whatever the number of images: images are decoded a
//! chunk at a time and streamed into a scratch tensor file in the output
//! folder; the decisions above need only hashes and labels; the kept images
//! are then copied from the (memory-mapped) scratch file into
//! `images.safetensors`, and the scratch file is removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use rayon::prelude::*;

use crate::algo::decode::{self, DecodeError, Decoded, Layout};
use pipe_core::data::dataset::{Dataset, Excluded, Meta, Row};
use pipe_core::data::split::{Split, split, subsample};
use pipe_core::data::synthetic::Synthetic;
use pipe_core::data::tensor::ImageTensor;
use pipe_core::data::tensor::TensorWriter;
use pipe_core::data::{BadItem, Candidate, Listing, Source, folder, imet, openclipart};
use pipe_core::kinds::load::{Color, DatasetKind, LoadParams, OnBadImage, RareClasses, SingleLabel};
use pipe_core::kinds::{StageContext, StageError};
use pipe_core::rng::Rng;

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    decode::init_opencv(1);
    let p: LoadParams = ctx.typed_params()?;
    if let Some(trained) = ctx.trained().map(Path::to_path_buf) {
        return new_images::run(ctx, &p, &trained);
    }
    let synthetic = Synthetic { classes: p.classes as usize, images: p.images as usize, imbalance: p.imbalance, seed: ctx.seed };
    let Listing { mut candidates, mut bad, dropped, notes } = list(&p, &synthetic)?;
    for note in notes {
        ctx.warn(note);
    }
    let listed_classes: BTreeSet<String> = candidates.iter().map(|c| c.label.clone()).collect();
    if p.limit > 0 {
        candidates = limit(ctx, candidates, p.limit as usize);
    }

    let layout = Layout { size: p.image_size as usize, grey: p.color == Color::Grey, max_megapixels: p.max_megapixels };
    let (mut kept, too_large) = decode_usable(ctx, candidates, layout, &synthetic, p.on_bad_image == OnBadImage::Fail, &mut bad)?;
    let before = kept.len();
    if p.dedup {
        kept = dedup(kept);
    }
    let duplicates_removed = before - kept.len();
    ctx.log(format!("duplicates removed: {duplicates_removed}"));

    let mut dropped: Vec<Excluded> = dropped.into_iter().chain(too_large).map(|d| Excluded { item: d.item, problem: d.problem }).collect();
    filter_labels(&mut kept, p.min_label_count as usize);
    let rare = rare_classes(ctx, &mut kept, &mut dropped, &p)?;
    let (classes, label_ids) = class_ids(&kept.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>());
    check_classes_left(ctx, &classes, &listed_classes, &rare)?;
    let (splits, unsplit) = split(&label_ids, p.test_fraction, p.validation_fraction, &mut Rng::new(ctx.seed, "load/split"));
    let unsplittable: Vec<String> = unsplit.iter().map(|&c| classes[c].clone()).collect();
    if !unsplittable.is_empty() {
        ctx.warn(format!("too few images to hold some out for testing/validation: {}", unsplittable.join(", ")));
    }

    let left_out = LeftOut { duplicates_removed, bad, dropped, unsplittable };
    let (meta, rows) = assemble(p.dataset.word(), layout, &kept, classes, &label_ids, &splits, left_out);
    ctx.log(format!("{} images in {} classes, {} labels", rows.len(), meta.classes.len(), meta.labels.len()));
    copy_kept(ctx, &kept, layout)?;
    Dataset::write_index(ctx.out_dir(), &meta, &rows).map_err(StageError::from)
}

/// The scratch tensor of every decoded image, in decoding order.
const SCRATCH: &str = "decoded.scratch.safetensors";
/// Images decoded (and held in memory) at once.
const CHUNK: usize = 256;

/// Copies the kept images, in their final order, from the scratch tensor
/// into `images.safetensors`, then removes the scratch tensor.
fn copy_kept(ctx: &StageContext, kept: &[(Candidate, Stored)], layout: Layout) -> Result<(), StageError> {
    let scratch_path = ctx.out_dir().join(SCRATCH);
    let scratch = ImageTensor::read(&scratch_path).map_err(StageError::from)?;
    let (size, channels) = (layout.size, layout.channels());
    let mut out = TensorWriter::with_count(&ctx.out_dir().join("images.safetensors"), kept.len(), size, size, channels)?;
    for (i, (_, s)) in kept.iter().enumerate() {
        if i % 1024 == 0 {
            ctx.check_cancelled()?;
        }
        out.push(scratch.image(s.at))?;
    }
    out.finish()?;
    drop(scratch);
    pipe_core::fsx::remove_file(&scratch_path)?;
    Ok(())
}

/// The collection's candidates per `dataset`; fails when there are none, or
/// at a bad listed item with `on_bad_image = "fail"`.
fn list(p: &LoadParams, synthetic: &Synthetic) -> Result<Listing, StageError> {
    let root = p.root.as_deref().map(Path::new);
    let listing = match (p.dataset, root) {
        (DatasetKind::Synthetic, _) => Ok(synthetic.list()),
        (DatasetKind::Openclipart, Some(r)) => openclipart::list(r),
        (DatasetKind::Folder, Some(r)) => folder::list(r),
        (DatasetKind::Imet, Some(r)) => {
            let rule = if p.single_label == SingleLabel::First { imet::SingleLabel::First } else { imet::SingleLabel::MostFrequent };
            imet::list(r, rule, p.label_prefix.as_deref())
        }
        _ => return Err(StageError::Failed("`root` is not set".to_string())),
    }?;
    if listing.candidates.is_empty() && listing.bad.is_empty() {
        return Err(StageError::Failed(format!(
            "no images found under {}",
            root.map_or("the generator".into(), |r| r.display().to_string())
        )));
    }
    listing.check_label_names()?;
    if p.on_bad_image == OnBadImage::Fail
        && let Some(b) = listing.bad.first()
    {
        return Err(StageError::Failed(format!("{}: {} (on_bad_image = \"fail\")", b.item, b.problem)));
    }
    Ok(listing)
}

/// `limit` of the candidates, stratified and seeded.
fn limit(ctx: &mut StageContext, candidates: Vec<Candidate>, limit: usize) -> Vec<Candidate> {
    let labels = class_ids(&candidates).1;
    let keep = subsample(&labels, limit, &mut Rng::new(ctx.seed, "load/limit"));
    let candidates: Vec<Candidate> = keep.into_iter().map(|i| candidates[i].clone()).collect();
    ctx.log(format!("limit: kept {} images, stratified", candidates.len()));
    candidates
}

/// Decodes the candidates: the usable ones, and those over
/// `max_megapixels`; unreadable ones join `bad`. Reports both kinds, and
/// fails when nothing usable is left.
#[allow(clippy::type_complexity)]
fn decode_usable(
    ctx: &mut StageContext,
    candidates: Vec<Candidate>,
    layout: Layout,
    synthetic: &Synthetic,
    fail_fast: bool,
    bad: &mut Vec<BadItem>,
) -> Result<(Vec<(Candidate, Stored)>, Vec<BadItem>), StageError> {
    let decoded = decode_all(ctx, &candidates, layout, synthetic, fail_fast)?;
    let mut kept: Vec<(Candidate, Stored)> = Vec::with_capacity(candidates.len());
    let mut too_large = Vec::new();
    for (c, d) in candidates.into_iter().zip(decoded) {
        match d {
            Ok(d) => kept.push((c, d)),
            Err(DecodeError::Bad(problem)) => bad.push(BadItem { item: c.source.display(), problem }),
            Err(DecodeError::TooLarge(problem)) => too_large.push(BadItem { item: c.source.display(), problem }),
        }
    }
    report_bad(ctx, bad);
    report_too_large(ctx, &too_large);
    if kept.is_empty() {
        if bad.is_empty() {
            return Err(StageError::Failed("no usable images: every image is over max_megapixels; raise it".into()));
        }
        let first = bad.first().map(|b| format!(" (first: {}: {})", b.item, b.problem)).unwrap_or_default();
        return Err(StageError::Failed(format!("no usable images: all {} were bad{first}", bad.len())));
    }
    Ok((kept, too_large))
}

/// One warning line with the first names; every name in the stage log.
fn report_too_large(ctx: &mut StageContext, too_large: &[BadItem]) {
    if too_large.is_empty() {
        return;
    }
    let first: Vec<String> = too_large.iter().take(2).map(|b| format!("{} ({})", short(&b.item), b.problem)).collect();
    ctx.warn(format!(
        "left out {} image{} over max_megapixels (raise it to include them; ~7 bytes of memory per pixel while decoding): {}{}",
        too_large.len(),
        if too_large.len() == 1 { "" } else { "s" },
        first.join("; "),
        if too_large.len() > 2 { ", ... (all in stage.log)" } else { "" }
    ));
    for b in too_large {
        ctx.log(format!("too large: {}: {}", b.item, b.problem));
    }
}

/// Fails unless two classes are left; warns about listed classes that lost
/// every image (other than rare ones, already reported).
fn check_classes_left(
    ctx: &mut StageContext,
    classes: &[String],
    listed_classes: &BTreeSet<String>,
    rare: &[String],
) -> Result<(), StageError> {
    if classes.len() < 2 {
        return Err(StageError::Failed(format!(
            "only {} class{} left ({}) after removing duplicates, bad and rare images: a classification task needs at least two; \
             add class folders under `root` (or lower min_class_count)",
            classes.len(),
            if classes.len() == 1 { "" } else { "es" },
            classes.join(", ")
        )));
    }
    let emptied: Vec<&String> = listed_classes.iter().filter(|c| !classes.contains(c) && !rare.contains(c)).collect();
    if !emptied.is_empty() {
        let names = emptied.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
        ctx.warn(format!(
            "no usable image left in class{} {names} (bad, too large or duplicates of other classes' images)",
            if emptied.len() == 1 { "" } else { "es" }
        ));
    }
    Ok(())
}

/// What was left out on the way, recorded in the dataset's metadata.
struct LeftOut {
    duplicates_removed: usize,
    bad: Vec<BadItem>,
    dropped: Vec<Excluded>,
    unsplittable: Vec<String>,
}

/// The dataset's metadata and rows: one row per kept item, with its class
/// and split (its image is copied by [`copy_kept`]).
fn assemble(
    dataset: &str,
    layout: Layout,
    kept: &[(Candidate, Stored)],
    classes: Vec<String>,
    label_ids: &[usize],
    splits: &[Split],
    left_out: LeftOut,
) -> (Meta, Vec<Row>) {
    let mut rows = Vec::with_capacity(kept.len());
    for (((c, d), label_id), split) in kept.iter().zip(label_ids).zip(splits) {
        rows.push(Row {
            source: c.source.display(),
            label_id: *label_id as u32,
            labels: c.labels.clone(),
            split: *split,
            pixel_hash: blake3::Hash::from(d.hash).to_hex().to_string(),
            augmented: false,
        });
    }
    let mut vocabulary: Vec<(String, usize)> = label_frequencies(kept).into_iter().collect();
    vocabulary.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let meta = Meta {
        dataset: dataset.to_string(),
        image_size: layout.size,
        channels: layout.channels(),
        classes,
        labels: vocabulary.into_iter().map(|(l, _)| l).collect(),
        counts: BTreeMap::new(),
        label_counts: BTreeMap::new(),
        labels_per_image: BTreeMap::new(),
        duplicates_removed: left_out.duplicates_removed,
        bad: left_out.bad.into_iter().map(|b| Excluded { item: b.item, problem: b.problem }).collect(),
        dropped: left_out.dropped,
        unsplittable: left_out.unsplittable,
        class_weights: Vec::new(),
    };
    let mut meta = meta;
    Dataset::refresh_stats_of(&mut meta, &rows);
    (meta, rows)
}

/// A decoded image whose pixels wait in the scratch tensor, at row `at`.
struct Stored {
    hash: [u8; 32],
    at: usize,
}

/// Decodes every candidate in parallel, a chunk at a time, streaming the
/// pixels into the scratch tensor; reports progress.
fn decode_all(
    ctx: &StageContext,
    candidates: &[Candidate],
    layout: Layout,
    synthetic: &Synthetic,
    fail_fast: bool,
) -> Result<Vec<Result<Stored, DecodeError>>, StageError> {
    let ticker = ctx.ticker(candidates.len(), "images");
    let mut scratch = TensorWriter::create(&ctx.out_dir().join(SCRATCH), layout.size, layout.size, layout.channels())?;
    let mut results: Vec<Result<Stored, DecodeError>> = Vec::with_capacity(candidates.len());
    for chunk in candidates.chunks(CHUNK) {
        let decoded = decode_chunk(ctx, chunk, layout, synthetic, &ticker);
        for d in decoded {
            results.push(match d {
                Ok(Decoded { hash, pixels }) => {
                    scratch.push(&pixels)?;
                    Ok(Stored { hash, at: scratch.count() - 1 })
                }
                Err(e) => Err(e),
            });
        }
        ctx.check_cancelled()?;
    }
    scratch.finish()?;
    if fail_fast && let Some((c, Err(problem))) = candidates.iter().zip(&results).find(|(_, r)| matches!(r, Err(DecodeError::Bad(_)))) {
        return Err(StageError::Failed(format!("{}: {problem} (on_bad_image = \"fail\")", c.source.display())));
    }
    Ok(results)
}

/// Decodes one chunk of candidates in parallel.
fn decode_chunk(
    ctx: &StageContext,
    candidates: &[Candidate],
    layout: Layout,
    synthetic: &Synthetic,
    ticker: &pipe_core::kinds::context::Ticker,
) -> Vec<Result<Decoded, DecodeError>> {
    candidates
        .par_iter()
        .map(|c| {
            let _permit = ctx.permit();
            if ctx.check_cancelled().is_err() {
                return Err(DecodeError::Bad("interrupted".to_string()));
            }
            let r = match &c.source {
                Source::File(path) => decode::decode_file(path, layout),
                Source::Synthetic { index, class } => {
                    let rgb = synthetic.render(*index, *class, layout.size);
                    let hash = *blake3::hash(&rgb).as_bytes();
                    Ok(Decoded { hash, pixels: if layout.grey { decode::to_grey(&rgb) } else { rgb } })
                }
            };
            ticker.tick();
            r
        })
        .collect()
}

/// One warning line with the first names; every name in the stage log.
fn report_bad(ctx: &mut StageContext, bad: &[BadItem]) {
    if bad.is_empty() {
        return;
    }
    for b in bad {
        ctx.log(format!("bad image: {}: {}", b.item, b.problem));
    }
    let first: Vec<String> = bad.iter().take(3).map(|b| format!("{} ({})", short(&b.item), b.problem)).collect();
    let more = if bad.len() > 3 { format!(", and {} more in stage.log", bad.len() - 3) } else { String::new() };
    ctx.warn(format!("skipped {} bad image{}: {}{more}", bad.len(), if bad.len() == 1 { "" } else { "s" }, first.join("; ")));
}

fn short(item: &str) -> &str {
    let parts: Vec<&str> = item.rsplitn(3, '/').collect();
    if parts.len() == 3 { &item[item.len() - parts[0].len() - parts[1].len() - 1..] } else { item }
}

/// Keeps one image per decoded-pixel hash: the real file before a link, then
/// the first path; the kept copy gets the union of the label sets.
fn dedup(mut kept: Vec<(Candidate, Stored)>) -> Vec<(Candidate, Stored)> {
    kept.sort_by_cached_key(|(c, _)| (c.is_link, c.source.display()));
    let mut first: HashMap<[u8; 32], usize> = HashMap::new();
    let mut out: Vec<(Candidate, Stored)> = Vec::with_capacity(kept.len());
    for (c, d) in kept {
        match first.get(&d.hash) {
            Some(&i) => {
                for l in c.labels {
                    if !out[i].0.labels.contains(&l) {
                        out[i].0.labels.push(l);
                    }
                }
            }
            None => {
                first.insert(d.hash, out.len());
                out.push((c, d));
            }
        }
    }
    // Back to listing order (class folders, then paths), not link order.
    out.sort_by_key(|(c, _)| c.source.display());
    out
}

fn label_frequencies(kept: &[(Candidate, Stored)]) -> BTreeMap<String, usize> {
    let mut freq = BTreeMap::new();
    for (c, _) in kept {
        for l in &c.labels {
            *freq.entry(l.clone()).or_insert(0) += 1;
        }
    }
    freq
}

fn filter_labels(kept: &mut [(Candidate, Stored)], min: usize) {
    let freq = label_frequencies(kept);
    for (c, _) in kept.iter_mut() {
        c.labels.retain(|l| freq[l] >= min);
    }
}

/// Drops or merges classes with fewer than `min_class_count` images;
/// returns their names.
fn rare_classes(
    ctx: &mut StageContext,
    kept: &mut Vec<(Candidate, Stored)>,
    dropped: &mut Vec<Excluded>,
    p: &LoadParams,
) -> Result<Vec<String>, StageError> {
    let min = p.min_class_count as usize;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (c, _) in kept.iter() {
        *counts.entry(c.label.clone()).or_default() += 1;
    }
    let rare: Vec<(String, usize)> = counts.into_iter().filter(|(_, n)| *n < min).collect();
    if rare.is_empty() {
        return Ok(Vec::new());
    }
    let names = rare.iter().map(|(c, n)| format!("{c} ({n})")).collect::<Vec<_>>().join(", ");
    let is_rare = |label: &str| rare.iter().any(|(c, _)| c == label);
    if p.rare_classes == RareClasses::Merge {
        let into = p.rare_name.clone();
        for (c, _) in kept.iter_mut().filter(|(c, _)| is_rare(&c.label)) {
            c.label = into.clone();
        }
        ctx.warn(format!("merged classes with fewer than {min} images into `{into}`: {names}"));
    } else {
        for (c, _) in kept.iter().filter(|(c, _)| is_rare(&c.label)) {
            dropped.push(Excluded { item: c.source.display(), problem: format!("class `{}` has fewer than {min} images", c.label) });
        }
        kept.retain(|(c, _)| !is_rare(&c.label));
        ctx.warn(format!("dropped classes with fewer than {min} images: {names}"));
    }
    if kept.is_empty() {
        return Err(StageError::Failed(format!("no class has {min} images (min_class_count): lower it")));
    }
    Ok(rare.into_iter().map(|(c, _)| c).collect())
}

/// Class names (most frequent first, then by name) and each item's class id.
fn class_ids(items: &[Candidate]) -> (Vec<String>, Vec<usize>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in items {
        *counts.entry(&c.label).or_default() += 1;
    }
    let mut classes: Vec<(&str, usize)> = counts.into_iter().collect();
    classes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let names: Vec<String> = classes.iter().map(|(n, _)| n.to_string()).collect();
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    (names.clone(), items.iter().map(|c| index[c.label.as_str()]).collect())
}

mod new_images;

#[cfg(test)]
mod tests;
