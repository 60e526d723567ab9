//! `load` under `pipe predict`: every image file below `root` (the new
//! images, in path order), decoded with the training run's layout (size,
//! colour, `max_megapixels`, `on_bad_image`), with no deduplication, no
//! split (every image is a test image) and no labels; the class and label
//! names are the training run's (its entry is the stage's input `model`),
//! so the replayed stages predict over the same classes. Files that cannot
//! be used are named in `dataset.json` (`bad`, `dropped`), and warned of.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Stored, copy_kept, decode_usable};
use crate::algo::decode::Layout;
use pipe_core::data::dataset::{Dataset, Excluded, Meta, Row};
use pipe_core::data::split::Split;
use pipe_core::data::synthetic::Synthetic;
use pipe_core::data::{Candidate, Source, folder};
use pipe_core::kinds::load::{Color, LoadParams, OnBadImage};
use pipe_core::kinds::{StageContext, StageError};

pub fn run(ctx: &mut StageContext, p: &LoadParams, trained: &Path) -> Result<(), StageError> {
    let Some(root) = p.root.as_deref().map(Path::new) else {
        return Err(StageError::Failed("`root` is not set: give the folder of new images".into()));
    };
    let training = Dataset::read_meta(trained).map_err(StageError::from)?;
    let mut files = Vec::new();
    folder::collect(root, &mut files).map_err(StageError::from)?;
    files.sort();
    if files.is_empty() {
        return Err(StageError::Failed(format!("no images (png, jpg, jpeg, bmp, webp) under {}", root.display())));
    }
    let candidates: Vec<Candidate> = files
        .into_iter()
        .map(|(path, is_link)| Candidate { source: Source::File(path), label: String::new(), labels: Vec::new(), is_link })
        .collect();
    let layout = Layout { size: p.image_size as usize, grey: p.color == Color::Grey, max_megapixels: p.max_megapixels };
    let unused = Synthetic { classes: 2, images: 0, imbalance: 1.0, seed: 0 };
    let mut bad = Vec::new();
    let (kept, too_large): (Vec<(Candidate, Stored)>, _) =
        decode_usable(ctx, candidates, layout, &unused, p.on_bad_image == OnBadImage::Fail, &mut bad)?;
    let rows: Vec<Row> = kept
        .iter()
        .map(|(c, d)| Row {
            source: c.source.display(),
            label_id: 0,
            labels: Vec::new(),
            split: Split::Test,
            pixel_hash: blake3::Hash::from(d.hash).to_hex().to_string(),
            augmented: false,
        })
        .collect();
    let meta = Meta {
        dataset: "new images".into(),
        image_size: layout.size,
        channels: layout.channels(),
        classes: training.classes,
        labels: training.labels,
        counts: BTreeMap::new(),
        label_counts: BTreeMap::new(),
        labels_per_image: BTreeMap::new(),
        duplicates_removed: 0,
        bad: bad.into_iter().map(|b| Excluded { item: b.item, problem: b.problem }).collect(),
        dropped: too_large.into_iter().map(|b| Excluded { item: b.item, problem: b.problem }).collect(),
        unsplittable: Vec::new(),
        class_weights: Vec::new(),
    };
    ctx.log(format!("{} new images to classify", rows.len()));
    copy_kept(ctx, &kept, layout)?;
    Dataset::write_index(ctx.out_dir(), &meta, &rows).map_err(StageError::from)
}
