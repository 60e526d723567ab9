//! Colour histograms: the colour descriptor beside HOG's shape. Each channel
//! is quantised into `levels` equal bins (R, G, B: `levels`³ bins; a grey
//! image counts as R = G = B), the counts are divided by the number of
//! pixels counted and square-rooted (the Hellinger map, so that the RBF
//! kernel's Euclidean distance compares distributions well). With
//! `ignore_white`, pixels whose every channel is at least 243 (95%) are
//! background, as for clip art on a white page (transparency is composited
//! on white by `load`), and are not counted; an image of nothing but
//! background gives zeros.

/// Colour-histogram settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourHistogram {
    pub levels: usize,
    pub ignore_white: bool,
}

/// The lowest channel value that counts as white background.
const WHITE: u8 = 243;

impl ColourHistogram {
    /// The descriptor's length.
    pub fn dim(&self) -> usize {
        self.levels.pow(3)
    }

    /// The descriptor of one image (`channels` interleaved; the first three
    /// are R, G, B, a single one is grey, a fourth is ignored).
    pub fn describe(&self, pixels: &[u8], channels: usize) -> Vec<f32> {
        let mut counts = vec![0u32; self.dim()];
        let level = |v: u8| usize::from(v) * self.levels / 256;
        let mut counted = 0u32;
        for p in pixels.chunks_exact(channels) {
            let (r, g, b) = if channels >= 3 { (p[0], p[1], p[2]) } else { (p[0], p[0], p[0]) };
            if self.ignore_white && r >= WHITE && g >= WHITE && b >= WHITE {
                continue;
            }
            counts[(level(r) * self.levels + level(g)) * self.levels + level(b)] += 1;
            counted += 1;
        }
        counts.iter().map(|&c| if counted == 0 { 0.0 } else { (c as f32 / counted as f32).sqrt() }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_levels_cubed_and_pixels_land_in_their_colour() {
        let h = ColourHistogram { levels: 4, ignore_white: false };
        assert_eq!(h.dim(), 64);
        // Two pure red pixels and two pure blue ones: half the mass in each.
        let d = h.describe(&[255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255], 3);
        let red = 3 * 16;
        let blue = 3;
        assert!((d[red] - 0.5f32.sqrt()).abs() < 1e-6 && (d[blue] - 0.5f32.sqrt()).abs() < 1e-6, "{d:?}");
        assert_eq!(d.iter().filter(|&&v| v > 0.0).count(), 2);
        let unit: f32 = d.iter().map(|v| v * v).sum();
        assert!((unit - 1.0).abs() < 1e-6, "the Hellinger map gives unit length");
    }

    #[test]
    fn white_background_is_skipped_only_when_asked() {
        let pixels = [255, 255, 255, 250, 244, 243, 0, 128, 0];
        let skip = ColourHistogram { levels: 2, ignore_white: true }.describe(&pixels, 3);
        assert_eq!(skip, vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], "only the green pixel (0, 128, 0) counts");
        let keep = ColourHistogram { levels: 2, ignore_white: false }.describe(&pixels, 3);
        assert!((keep[7] - (2.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(ColourHistogram { levels: 2, ignore_white: true }.describe(&[255; 6], 3), vec![0.0; 8]);
    }

    #[test]
    fn grey_images_count_as_equal_channels() {
        let h = ColourHistogram { levels: 2, ignore_white: false };
        assert_eq!(h.describe(&[10, 200], 1), h.describe(&[10, 10, 10, 200, 200, 200], 3));
    }
}
