//! Local binary patterns (Ojala, Pietikäinen & Mäenpää 2002): the texture
//! descriptor beside HOG's shape and the colour histogram. Each pixel of
//! the grey image (the channels' mean) gets 8 bits, one per neighbour at
//! radius 1 (clockwise from the top-left; edges replicated), set when the
//! neighbour is at least the centre plus `tolerance` grey levels (so flat
//! clip-art fills are one pattern, not noise). The 58 "uniform" codes (at
//! most two 0/1 transitions around the circle) keep their own bin and all
//! others share one: 59 bins. Histograms of the whole image and of its four
//! quadrants are each divided by their pixel count and square-rooted (the
//! Hellinger map), then scaled by 1/√5 so the whole descriptor has unit
//! length: 5 × 59 = 295 values.

/// The LBP histogram settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lbp {
    pub tolerance: f32,
}

/// Bins per histogram: 58 uniform codes and one for the rest.
const BINS: usize = 59;
/// The whole image and its four quadrants.
const REGIONS: usize = 5;

/// Neighbour offsets (dy, dx), clockwise from the top-left.
const NEIGHBOURS: [(isize, isize); 8] = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)];

/// Each 8-bit code's bin: uniform codes in increasing order, then the rest.
fn bin_of() -> [u8; 256] {
    let mut bins = [0u8; 256];
    let mut next = 0u8;
    for (code, bin) in bins.iter_mut().enumerate() {
        let transitions = (0..8).filter(|&i| (code >> i) & 1 != (code >> ((i + 1) % 8)) & 1).count();
        if transitions <= 2 {
            *bin = next;
            next += 1;
        } else {
            *bin = (BINS - 1) as u8;
        }
    }
    bins
}

impl Lbp {
    /// The descriptor's length.
    pub fn dim(&self) -> usize {
        BINS * REGIONS
    }

    /// The descriptor of one image (`channels` interleaved, `side`×`side`).
    pub fn describe(&self, pixels: &[u8], side: usize, channels: usize) -> Vec<f32> {
        let grey: Vec<f32> =
            pixels.chunks_exact(channels).map(|p| p.iter().map(|&v| f32::from(v)).sum::<f32>() / channels as f32).collect();
        let at = |y: isize, x: isize| grey[y.clamp(0, side as isize - 1) as usize * side + x.clamp(0, side as isize - 1) as usize];
        let bins = bin_of();
        let half = side / 2;
        let mut counts = vec![0u32; self.dim()];
        for y in 0..side {
            for x in 0..side {
                let centre = grey[y * side + x] + self.tolerance;
                let mut code = 0usize;
                for (bit, (dy, dx)) in NEIGHBOURS.iter().enumerate() {
                    if at(y as isize + dy, x as isize + dx) >= centre {
                        code |= 1 << bit;
                    }
                }
                let bin = usize::from(bins[code]);
                let quadrant = 1 + usize::from(y >= half) * 2 + usize::from(x >= half);
                counts[bin] += 1;
                counts[quadrant * BINS + bin] += 1;
            }
        }
        let scale = 1.0 / (REGIONS as f32).sqrt();
        counts
            .chunks(BINS)
            .flat_map(|region| {
                let total: u32 = region.iter().sum();
                region.iter().map(move |&c| if total == 0 { 0.0 } else { (c as f32 / total as f32).sqrt() * scale })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_58_uniform_codes() {
        let bins = bin_of();
        assert_eq!(bins.iter().filter(|&&b| usize::from(b) < BINS - 1).count(), 58);
        assert_eq!((bins[0], bins[255]), (0, 57), "all-off first, all-on last");
        assert_eq!(usize::from(bins[0b0101_0101]), BINS - 1, "8 transitions: not uniform");
    }

    #[test]
    fn a_flat_image_is_one_pattern_and_the_descriptor_has_unit_length() {
        let lbp = Lbp { tolerance: 5.0 };
        let d = lbp.describe(&[200; 8 * 8 * 3], 8, 3);
        assert_eq!(d.len(), 295);
        // Every neighbour is below centre + tolerance: code 0, bin 0, in all five regions.
        for region in 0..5 {
            assert!((d[region * BINS] - 1.0 / 5f32.sqrt()).abs() < 1e-6);
        }
        assert!((d.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn a_bright_right_half_lights_the_right_neighbours_of_the_edge() {
        // Columns 0-3 dark, 4-7 bright: pixels in column 3 see three bright
        // neighbours (bits 2, 3, 4: code 0b11100, uniform), in the left quadrants.
        let pixels: Vec<u8> = (0..8 * 8).map(|i| if i % 8 >= 4 { 250 } else { 10 }).collect();
        let lbp = Lbp { tolerance: 5.0 };
        let d = lbp.describe(&pixels, 8, 1);
        let bin = usize::from(bin_of()[0b11100]);
        let top_left = BINS + bin;
        assert!(d[top_left] > 0.0, "the edge column shows in the top-left quadrant");
        assert_eq!(d[2 * BINS + bin], 0.0, "not in the top-right quadrant");
    }
}
