//! Image augmentation: flips, then one affine warp (OpenCV `warpAffine`)
//! combining rotation, zoom and translation about the image centre, with
//! white filling what the warp uncovers (the same white as `load`'s padding).

use opencv::core::{Mat, Point2f, Scalar, Size};
use opencv::prelude::*;

use super::CvError;

use pipe_core::rng::Rng;

/// The ranges augmentations are drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranges {
    pub hflip: bool,
    pub vflip: bool,
    /// Degrees, drawn from [-rotate, rotate].
    pub rotate: f64,
    /// Fraction of the side, drawn from [-translate, translate] per axis.
    pub translate: f64,
    /// Scale drawn from [1 - zoom, 1 + zoom].
    pub zoom: f64,
}

/// One drawn transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    pub hflip: bool,
    pub vflip: bool,
    pub angle: f64,
    pub dx: f64,
    pub dy: f64,
    pub scale: f64,
}

impl Ranges {
    pub fn draw(&self, rng: &mut Rng) -> Transform {
        Transform {
            hflip: self.hflip && rng.chance(0.5),
            vflip: self.vflip && rng.chance(0.5),
            angle: rng.range(-self.rotate, self.rotate),
            dx: rng.range(-self.translate, self.translate),
            dy: rng.range(-self.translate, self.translate),
            scale: rng.range(1.0 - self.zoom, 1.0 + self.zoom),
        }
    }
}

/// Applies `t` to one `size x size x channels` image.
pub fn apply(pixels: &[u8], size: usize, channels: usize, t: &Transform) -> Result<Vec<u8>, CvError> {
    let cv = CvError::at("augmentation failed");
    let mut flipped = pixels.to_vec();
    if t.hflip || t.vflip {
        for y in 0..size {
            for x in 0..size {
                let (sx, sy) = (if t.hflip { size - 1 - x } else { x }, if t.vflip { size - 1 - y } else { y });
                let (d, s) = ((y * size + x) * channels, (sy * size + sx) * channels);
                flipped[d..d + channels].copy_from_slice(&pixels[s..s + channels]);
            }
        }
    }
    let typ = if channels == 1 { opencv::core::CV_8UC1 } else { opencv::core::CV_8UC3 };
    let mut src = Mat::new_rows_cols_with_default(size as i32, size as i32, typ, Scalar::all(0.0)).map_err(&cv)?;
    src.data_bytes_mut().map_err(&cv)?.copy_from_slice(&flipped);
    let centre = Point2f::new(size as f32 / 2.0 - 0.5, size as f32 / 2.0 - 0.5);
    let mut m = opencv::imgproc::get_rotation_matrix_2d(centre, t.angle, t.scale).map_err(&cv)?;
    *m.at_2d_mut::<f64>(0, 2).map_err(&cv)? += t.dx * size as f64;
    *m.at_2d_mut::<f64>(1, 2).map_err(&cv)? += t.dy * size as f64;
    let mut dst = Mat::default();
    opencv::imgproc::warp_affine(
        &src,
        &mut dst,
        &m,
        Size::new(size as i32, size as i32),
        opencv::imgproc::INTER_LINEAR,
        opencv::core::BORDER_CONSTANT,
        Scalar::all(255.0),
    )
    .map_err(&cv)?;
    Ok(dst.data_bytes().map_err(&cv)?.to_vec())
}

/// Writes a grid of equally sized images (`rows` of `cols`) as a PNG.
pub fn write_sheet(path: &std::path::Path, tiles: &[Vec<u8>], cols: usize, size: usize, channels: usize) -> Result<(), CvError> {
    let cv = CvError::at(format!("cannot write {}", path.display()));
    let rows = tiles.len().div_ceil(cols.max(1));
    let gap = 2;
    let (w, h) = (cols * (size + gap) + gap, rows * (size + gap) + gap);
    let mut sheet = vec![128u8; w * h * 3];
    for (i, tile) in tiles.iter().enumerate() {
        let (ox, oy) = (gap + (i % cols) * (size + gap), gap + (i / cols) * (size + gap));
        for y in 0..size {
            for x in 0..size {
                let s = (y * size + x) * channels;
                let d = ((oy + y) * w + ox + x) * 3;
                // BGR for OpenCV.
                let (r, g, b) = if channels == 1 { (tile[s], tile[s], tile[s]) } else { (tile[s], tile[s + 1], tile[s + 2]) };
                sheet[d..d + 3].copy_from_slice(&[b, g, r]);
            }
        }
    }
    let mat = super::decode::mat_from_rgb(&sheet, w, h).map_err(&cv)?;
    let ok = opencv::imgcodecs::imwrite(path.to_string_lossy().as_ref(), &mat, &opencv::core::Vector::new()).map_err(&cv)?;
    if ok { Ok(()) } else { Err(CvError::Failed(format!("cannot write {}", path.display()))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_keeps_pixels_and_flips_mirror() {
        let size = 4;
        let img: Vec<u8> = (0..(size * size * 3) as u8).collect();
        let id = Transform { hflip: false, vflip: false, angle: 0.0, dx: 0.0, dy: 0.0, scale: 1.0 };
        assert_eq!(apply(&img, size, 3, &id).unwrap(), img);
        let h = apply(&img, size, 3, &Transform { hflip: true, ..id }).unwrap();
        assert_eq!(&h[0..3], &img[9..12], "first pixel of a row comes from its last");
        let shifted = apply(&img, size, 3, &Transform { dx: 0.25, ..id }).unwrap();
        assert_eq!(&shifted[0..3], &[255, 255, 255], "uncovered pixels are white");
        assert_eq!(&shifted[3..6], &img[0..3], "one pixel right");
    }

    #[test]
    fn draws_are_seeded_and_within_range() {
        let r = Ranges { hflip: true, vflip: false, rotate: 10.0, translate: 0.1, zoom: 0.2 };
        let a = r.draw(&mut Rng::new(1, "a"));
        assert_eq!(a, r.draw(&mut Rng::new(1, "a")));
        assert!(!a.vflip && a.angle.abs() <= 10.0 && a.dx.abs() <= 0.1 && (0.8..=1.2).contains(&a.scale));
    }
}
