//! Histograms of oriented gradients (Dalal & Triggs 2005), in pure Rust:
//! the dense shape descriptor a plain scikit-image + scikit-learn baseline
//! uses. Grey levels (the channels' mean), centred [-1, 0, 1] gradients,
//! unsigned orientations in `bins` bins over 0-180° with linear voting
//! between the two nearest bins, cells of `cell`×`cell` pixels, blocks of
//! 2×2 cells at a one-cell stride, each normalised by L2-Hys (L2, clip at
//! 0.2, L2 again) as scikit-image's `hog(..., block_norm="L2-Hys")`.

/// HOG settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hog {
    pub cell: usize,
    pub bins: usize,
}

impl Hog {
    /// The descriptor's length for a `side`×`side` image.
    pub fn len(&self, side: usize) -> usize {
        let cells = side / self.cell;
        let blocks = cells.saturating_sub(1);
        blocks * blocks * 4 * self.bins
    }

    /// The descriptor of one image (`channels` interleaved, `side`×`side`).
    pub fn describe(&self, pixels: &[u8], side: usize, channels: usize) -> Vec<f32> {
        let grey: Vec<f32> =
            pixels.chunks_exact(channels).map(|p| p.iter().map(|&v| f32::from(v)).sum::<f32>() / channels as f32 / 255.0).collect();
        let cells = side / self.cell;
        let mut hist = vec![0f32; cells * cells * self.bins];
        let at = |x: usize, y: usize| grey[y * side + x];
        let bin_width = 180.0 / self.bins as f32;
        for y in 0..cells * self.cell {
            for x in 0..cells * self.cell {
                let gx = if x == 0 || x + 1 == side { 0.0 } else { at(x + 1, y) - at(x - 1, y) };
                let gy = if y == 0 || y + 1 == side { 0.0 } else { at(x, y + 1) - at(x, y - 1) };
                let magnitude = (gx * gx + gy * gy).sqrt();
                if magnitude == 0.0 {
                    continue;
                }
                let angle = gy.atan2(gx).to_degrees().rem_euclid(180.0);
                // Linear vote between the two bins whose centres surround the angle.
                let pos = angle / bin_width - 0.5;
                let lower = pos.floor();
                let share = pos - lower;
                let (b0, b1) =
                    ((lower as i64).rem_euclid(self.bins as i64) as usize, ((lower as i64) + 1).rem_euclid(self.bins as i64) as usize);
                let cell = (y / self.cell) * cells + x / self.cell;
                hist[cell * self.bins + b0] += magnitude * (1.0 - share);
                hist[cell * self.bins + b1] += magnitude * share;
            }
        }
        let mut out = Vec::with_capacity(self.len(side));
        for by in 0..cells.saturating_sub(1) {
            for bx in 0..cells.saturating_sub(1) {
                let mut block = Vec::with_capacity(4 * self.bins);
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let c = (by + dy) * cells + bx + dx;
                    block.extend_from_slice(&hist[c * self.bins..(c + 1) * self.bins]);
                }
                l2_hys(&mut block);
                out.extend(block);
            }
        }
        out
    }
}

/// L2 normalisation, values clipped at 0.2, L2 again.
fn l2_hys(v: &mut [f32]) {
    let norm = |v: &[f32]| (v.iter().map(|x| x * x).sum::<f32>() + 1e-10).sqrt();
    let n = norm(v);
    v.iter_mut().for_each(|x| *x = (*x / n).min(0.2));
    let n = norm(v);
    v.iter_mut().for_each(|x| *x /= n);
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOG: Hog = Hog { cell: 4, bins: 9 };

    fn image(f: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        (0..16 * 16).map(|i| f(i % 16, i / 16)).collect()
    }

    #[test]
    fn length_is_blocks_times_cells_times_bins() {
        assert_eq!(HOG.len(16), 3 * 3 * 4 * 9);
        assert_eq!(Hog { cell: 8, bins: 9 }.len(64), 7 * 7 * 36);
        assert_eq!(HOG.describe(&image(|x, _| (x * 10) as u8), 16, 1).len(), HOG.len(16));
    }

    #[test]
    fn a_vertical_edge_votes_for_horizontal_gradients() {
        // Dark left half, bright right half: gradients point along x (0°).
        let d = HOG.describe(&image(|x, _| if x < 8 { 0 } else { 255 }), 16, 1);
        let strongest = d.chunks(9).max_by(|a, b| a.iter().sum::<f32>().total_cmp(&b.iter().sum())).unwrap();
        // 0° sits between the first bin (centre 10°) and the last (170°).
        assert!(strongest[0] > 0.0 && strongest[8] > 0.0 && strongest[4] == 0.0, "{strongest:?}");
    }

    #[test]
    fn flat_images_give_zeros_and_blocks_are_unit_length() {
        assert!(HOG.describe(&image(|_, _| 90), 16, 1).iter().all(|v| *v == 0.0));
        let d = HOG.describe(&image(|x, y| ((x * 7 + y * 13) % 256) as u8), 16, 1);
        for block in d.chunks(36) {
            let n: f32 = block.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((n - 1.0).abs() < 1e-3, "{n}");
        }
    }
}
