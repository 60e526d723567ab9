//! Image decoding (OpenCV imgcodecs) into the pipeline's one pixel layout:
//! square, RGB or grey, 8-bit, rows top to bottom.
//!
//! - Transparent pixels are composited onto white (most Open Clip Art PNGs
//!   have an alpha channel or a transparent palette entry).
//! - Images are scaled to fit `size` on their longer side (area averaging
//!   when shrinking) and **padded** with white to a square, never cropped:
//!   an artwork keeps all of its content.
//! - 16-bit images are reduced to 8 bits; PNGs larger than `max_megapixels`
//!   are refused before decoding (three Open Clip Art PNGs exceed 178 MP and
//!   would need over 700 MB each).
//! - The deduplication hash is blake3 over the composited full-resolution
//!   pixels and their dimensions, so byte-different files with identical
//!   pixels count as duplicates.

use std::path::Path;

use opencv::core::{CV_8U, CV_8UC3, CV_16U, Mat, Scalar, Size};
use opencv::prelude::*;

use super::CvError;

/// A decoded image, ready for the tensor file.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub hash: [u8; 32],
    /// `size x size x channels` bytes.
    pub pixels: Vec<u8>,
}

/// How images are brought to the common layout.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub size: usize,
    pub grey: bool,
    pub max_megapixels: f64,
}

impl Layout {
    pub fn channels(&self) -> usize {
        if self.grey { 1 } else { 3 }
    }
}

/// Makes OpenCV quiet and sets how many threads its own loops use: 1 for
/// stages that parallelise with rayon, the granted slots for one that relies
/// on OpenCV's loops (k-means). Only the first call in a process counts:
/// changing OpenCV's thread count while another thread is inside one of its
/// parallel loops crashes it (seen with its TBB back end), and a worker
/// process runs one stage anyway.
pub fn init_opencv(threads: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = opencv::core::set_num_threads(threads.max(1) as i32);
        let _ = opencv::core::set_log_level(opencv::core::LogLevel::LOG_LEVEL_SILENT);
    });
}

/// Why a file gave no image.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// Broken: empty, truncated, not an image, unsupported pixels.
    Bad(String),
    /// A sound image larger than `max_megapixels`: left out by rule.
    TooLarge(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Bad(m) | DecodeError::TooLarge(m) => f.write_str(m),
        }
    }
}

/// Decodes one file. The error says what is wrong with it.
pub fn decode_file(path: &Path, layout: Layout) -> Result<Decoded, DecodeError> {
    let bytes = pipe_core::fsx::read(path).map_err(|e| DecodeError::Bad(format!("cannot read: {}", e.source)))?;
    if bytes.is_empty() {
        return Err(DecodeError::Bad("empty file (0 bytes)".into()));
    }
    if let Some((w, h)) = png_dimensions(&bytes) {
        let mp = w as f64 * h as f64 / 1e6;
        if mp > layout.max_megapixels {
            return Err(DecodeError::TooLarge(format!("{w}x{h} pixels ({mp:.0} MP) is over max_megapixels = {}", layout.max_megapixels)));
        }
    }
    decode_bytes(&bytes, layout).map_err(|e| DecodeError::Bad(e.to_string()))
}

fn decode_bytes(bytes: &[u8], layout: Layout) -> Result<Decoded, CvError> {
    let buf = opencv::core::Vector::<u8>::from_slice(bytes);
    let mat = opencv::imgcodecs::imdecode(&buf, opencv::imgcodecs::IMREAD_UNCHANGED).map_err(CvError::at("cannot decode"))?;
    if mat.empty() {
        return Err(CvError::Failed("cannot decode: truncated, damaged or not an image".into()));
    }
    let (rgb, w, h) = to_rgb(&mat)?;
    let hash =
        *blake3::Hasher::new().update(&(w as u64).to_le_bytes()).update(&(h as u64).to_le_bytes()).update(&rgb).finalize().as_bytes();
    Ok(Decoded { hash, pixels: fit(&rgb, w, h, layout)? })
}

/// `(width, height)` from a PNG header, if `bytes` is a PNG.
fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().expect("4 bytes"));
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

/// Any decoded Mat -> packed RGB bytes, transparency composited onto white.
fn to_rgb(mat: &Mat) -> Result<(Vec<u8>, usize, usize), CvError> {
    let cv = CvError::at("cannot convert pixels");
    let mut m8 = Mat::default();
    match mat.depth() {
        CV_8U => m8 = mat.try_clone().map_err(&cv)?,
        CV_16U => mat.convert_to(&mut m8, CV_8U, 1.0 / 257.0, 0.0).map_err(&cv)?,
        d => return Err(CvError::Failed(format!("unsupported pixel depth (OpenCV depth {d})"))),
    }
    let (w, h, ch) = (m8.cols() as usize, m8.rows() as usize, m8.channels() as usize);
    let m8 = if m8.is_continuous() { m8 } else { m8.try_clone().map_err(&cv)? };
    let data = m8.data_bytes().map_err(&cv)?;
    let mut rgb = Vec::with_capacity(w * h * 3);
    match ch {
        1 => data.iter().for_each(|&v| rgb.extend_from_slice(&[v, v, v])),
        2 => data.chunks_exact(2).for_each(|p| {
            let v = over_white(p[0], p[1]);
            rgb.extend_from_slice(&[v, v, v]);
        }),
        3 => data.chunks_exact(3).for_each(|p| rgb.extend_from_slice(&[p[2], p[1], p[0]])),
        4 => data
            .chunks_exact(4)
            .for_each(|p| rgb.extend_from_slice(&[over_white(p[2], p[3]), over_white(p[1], p[3]), over_white(p[0], p[3])])),
        n => return Err(CvError::Failed(format!("unsupported channel count {n}"))),
    }
    Ok((rgb, w, h))
}

fn over_white(v: u8, alpha: u8) -> u8 {
    ((u32::from(v) * u32::from(alpha) + 255 * (255 - u32::from(alpha)) + 127) / 255) as u8
}

/// Scales RGB `w x h` to fit the layout's square (aspect kept), pads with
/// white, and converts to grey when asked.
pub fn fit(rgb: &[u8], w: usize, h: usize, layout: Layout) -> Result<Vec<u8>, CvError> {
    let cv = CvError::at("cannot resize");
    let size = layout.size;
    let scale = size as f64 / w.max(h) as f64;
    let (nw, nh) = (((w as f64 * scale).round() as usize).clamp(1, size), ((h as f64 * scale).round() as usize).clamp(1, size));
    let src = mat_from_rgb(rgb, w, h).map_err(&cv)?;
    let mut scaled = Mat::default();
    let interpolation = if scale < 1.0 { opencv::imgproc::INTER_AREA } else { opencv::imgproc::INTER_LINEAR };
    opencv::imgproc::resize(&src, &mut scaled, Size::new(nw as i32, nh as i32), 0.0, 0.0, interpolation).map_err(&cv)?;
    let scaled = scaled.data_bytes().map_err(&cv)?;
    let (x0, y0) = ((size - nw) / 2, (size - nh) / 2);
    let mut square = vec![255u8; size * size * 3];
    for y in 0..nh {
        let dst = ((y0 + y) * size + x0) * 3;
        square[dst..dst + nw * 3].copy_from_slice(&scaled[y * nw * 3..(y + 1) * nw * 3]);
    }
    Ok(if layout.grey { to_grey(&square) } else { square })
}

/// Packed RGB -> an OpenCV 8UC3 Mat (the channel order does not matter to resize).
pub fn mat_from_rgb(rgb: &[u8], w: usize, h: usize) -> opencv::Result<Mat> {
    let mut m = Mat::new_rows_cols_with_default(h as i32, w as i32, CV_8UC3, Scalar::all(0.0))?;
    m.data_bytes_mut()?.copy_from_slice(rgb);
    Ok(m)
}

/// ITU-R BT.601 luma, as OpenCV's RGB2GRAY.
pub fn to_grey(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3).map(|p| (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])).round() as u8).collect()
}

#[cfg(test)]
mod tests;
