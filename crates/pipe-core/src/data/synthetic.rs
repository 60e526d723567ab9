//! A seeded generator of imbalanced "artwork-like" images, for tests and a
//! sub-minute demo. Each class has its own texture (stripes, checks, rings,
//! blobs, gradients), orientation and palette; images vary in phase, scale,
//! colour and noise. Class sizes fall geometrically from the largest to the
//! smallest (`imbalance` = their ratio), like the paper's collection.
//! Label sets describe what is drawn (texture, colour, density, a frame), so
//! the multi-label task is learnable too.

use super::{Candidate, Listing, Source};
use crate::rng::Rng;

const TEXTURES: [&str; 5] = ["stripes", "checks", "rings", "blobs", "gradient"];
const COLOURS: [&str; 6] = ["red", "yellow", "green", "cyan", "blue", "magenta"];

/// Parameters of the generator.
#[derive(Debug, Clone, Copy)]
pub struct Synthetic {
    pub classes: usize,
    pub images: usize,
    pub imbalance: f64,
    pub seed: u64,
}

impl Synthetic {
    fn texture(&self, class: usize) -> usize {
        class % TEXTURES.len()
    }

    fn hue(&self, class: usize) -> f64 {
        // Spread classes around the colour wheel, offset so neighbours differ.
        ((class * 137) % 360) as f64
    }

    pub fn class_name(&self, class: usize) -> String {
        format!("{}-{}", TEXTURES[self.texture(class)], COLOURS[(self.hue(class) / 60.0) as usize % 6])
            + &if class >= TEXTURES.len() { format!("-{}", class / TEXTURES.len()) } else { String::new() }
    }

    /// Images per class: geometric from the largest down to `largest / imbalance`, at least 2.
    pub fn class_sizes(&self) -> Vec<usize> {
        let c = self.classes.max(1);
        let weights: Vec<f64> = (0..c).map(|i| self.imbalance.powf(-(i as f64) / (c.max(2) - 1) as f64)).collect();
        let total: f64 = weights.iter().sum();
        weights.iter().map(|w| ((w / total * self.images as f64).round() as usize).max(2)).collect()
    }

    pub fn list(&self) -> Listing {
        let mut listing = Listing::default();
        let mut index = 0;
        for (class, &n) in self.class_sizes().iter().enumerate() {
            for _ in 0..n {
                let labels = self.labels(index, class);
                listing.candidates.push(Candidate {
                    source: Source::Synthetic { index, class },
                    label: self.class_name(class),
                    labels,
                    is_link: false,
                });
                index += 1;
            }
        }
        listing
    }

    /// The per-image draw: (density, framed, hue jitter, phase, angle jitter).
    fn draw(&self, index: u64) -> (bool, bool, f64, f64, f64) {
        let mut r = Rng::new(self.seed, &format!("synthetic/{index}"));
        (r.chance(0.5), r.chance(0.3), r.range(-20.0, 20.0), r.range(0.0, std::f64::consts::TAU), r.range(-0.3, 0.3))
    }

    fn labels(&self, index: u64, class: usize) -> Vec<String> {
        let (dense, framed, jitter, _, _) = self.draw(index);
        let hue = (self.hue(class) + jitter).rem_euclid(360.0);
        let mut out = vec![TEXTURES[self.texture(class)].to_string(), COLOURS[((hue + 30.0) / 60.0) as usize % 6].to_string()];
        out.push(if dense { "dense" } else { "sparse" }.to_string());
        if framed {
            out.push("framed".to_string());
        }
        out
    }

    /// Renders image `index` of `class` as `size x size x 3` RGB bytes.
    pub fn render(&self, index: u64, class: usize, size: usize) -> Vec<u8> {
        let (dense, framed, jitter, phase, angle_jitter) = self.draw(index);
        let mut r = Rng::new(self.seed, &format!("synthetic/{index}/pixels"));
        let hue = (self.hue(class) + jitter).rem_euclid(360.0);
        let fg = hsv(hue, 0.85, 0.9);
        let bg = hsv((hue + 180.0) % 360.0, 0.25, 0.95);
        let angle = (class as f64 * 0.7) + angle_jitter;
        let freq = if dense { 0.9 } else { 0.45 } * 8.0 / size as f64 * std::f64::consts::TAU;
        let blobs: Vec<(f64, f64, f64)> = (0..if dense { 9 } else { 4 })
            .map(|_| (r.range(0.0, size as f64), r.range(0.0, size as f64), r.range(0.06, 0.16) * size as f64))
            .collect();
        let (cx, cy) = (r.range(0.3, 0.7) * size as f64, r.range(0.3, 0.7) * size as f64);
        let mut out = Vec::with_capacity(size * size * 3);
        for y in 0..size {
            for x in 0..size {
                let (xf, yf) = (x as f64, y as f64);
                let t = match self.texture(class) {
                    0 => ((xf * angle.cos() + yf * angle.sin()) * freq + phase).sin() * 0.5 + 0.5,
                    1 => {
                        let cell = (size as f64 / if dense { 8.0 } else { 4.0 }).max(1.0);
                        f64::from((((xf + phase * 3.0) / cell) as i64 + (yf / cell) as i64) % 2 == 0)
                    }
                    2 => (((xf - cx).hypot(yf - cy)) * freq + phase).sin() * 0.5 + 0.5,
                    3 => f64::from(blobs.iter().any(|(bx, by, br)| (xf - bx).hypot(yf - by) < *br)),
                    _ => ((xf * angle.cos() + yf * angle.sin()) / (size as f64 * 1.4) + 0.3).clamp(0.0, 1.0),
                };
                let border = framed && (x < size / 12 || y < size / 12 || x >= size - size / 12 || y >= size - size / 12);
                for ch in 0..3 {
                    let v = if border { 30.0 } else { bg[ch] * (1.0 - t) + fg[ch] * t };
                    out.push((v + r.range(-12.0, 12.0)).clamp(0.0, 255.0) as u8);
                }
            }
        }
        out
    }
}

/// HSV (hue in degrees) to RGB in 0..=255.
fn hsv(h: f64, s: f64, v: f64) -> [f64; 3] {
    let c = v * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imbalanced_reproducible_and_distinct() {
        let g = Synthetic { classes: 5, images: 200, imbalance: 10.0, seed: 3 };
        let sizes = g.class_sizes();
        assert!(sizes[0] >= 8 * sizes[4] && sizes[4] >= 2, "{sizes:?}");
        let a = g.render(4, 0, 32);
        assert_eq!(a, g.render(4, 0, 32), "same seed, same pixels");
        assert_ne!(a, g.render(5, 0, 32));
        assert_ne!(a, Synthetic { seed: 4, ..g }.render(4, 0, 32));
        assert_eq!(a.len(), 32 * 32 * 3);
        let listing = g.list();
        assert_eq!(listing.candidates.len(), sizes.iter().sum::<usize>());
        let names: std::collections::BTreeSet<_> = listing.candidates.iter().map(|c| c.label.clone()).collect();
        assert_eq!(names.len(), 5);
        assert!(listing.candidates.iter().all(|c| c.labels.len() >= 3));
    }
}
