//! The decoded-image tensor file: safetensors layout (an 8-byte little-endian
//! header length, a JSON header, raw bytes) holding one `U8` tensor
//! `images` of shape `[N, H, W, C]`. Written and read here without libtorch;
//! the torch worker reads the same file with `tch`.

use std::io::{Read, Write};
use std::path::Path;

use super::DataError;
use crate::fsx;
use crate::util::{IoContext, PathError};

/// Images of one size, stored contiguously (`N x H x W x C` bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTensor {
    pub count: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl ImageTensor {
    pub fn new(height: usize, width: usize, channels: usize) -> Self {
        ImageTensor { count: 0, height, width, channels, data: Vec::new() }
    }

    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    pub fn push(&mut self, pixels: &[u8]) {
        assert_eq!(pixels.len(), self.image_len(), "image of the wrong size");
        self.data.extend_from_slice(pixels);
        self.count += 1;
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.data[i * n..(i + 1) * n]
    }

    pub fn write(&self, path: &Path) -> Result<(), PathError> {
        let header = serde_json::json!({
            "images": {
                "dtype": "U8",
                "shape": [self.count, self.height, self.width, self.channels],
                "data_offsets": [0, self.data.len()],
            }
        });
        let mut h = serde_json::to_vec(&header).expect("headers serialise");
        while !h.len().is_multiple_of(8) {
            h.push(b' ');
        }
        let mut f = std::io::BufWriter::new(fsx::create(path)?);
        f.write_all(&(h.len() as u64).to_le_bytes()).at("write", path)?;
        f.write_all(&h).at("write", path)?;
        f.write_all(&self.data).at("write", path)?;
        f.flush().at("write", path)
    }

    pub fn read(path: &Path) -> Result<ImageTensor, DataError> {
        let bad = |why: &str| DataError::malformed(path, format!("not an image tensor file ({why})"));
        let mut f = fsx::open(path)?;
        let mut len = [0u8; 8];
        f.read_exact(&mut len).map_err(|_| bad("too short"))?;
        let len = u64::from_le_bytes(len) as usize;
        if len > 1 << 20 {
            return Err(bad("header too large"));
        }
        let mut h = vec![0u8; len];
        f.read_exact(&mut h).map_err(|_| bad("truncated header"))?;
        let header: serde_json::Value = serde_json::from_slice(&h).map_err(|_| bad("header is not JSON"))?;
        let t = &header["images"];
        if t["dtype"] != "U8" {
            return Err(bad("dtype is not U8"));
        }
        let shape: Vec<usize> =
            t["shape"].as_array().ok_or_else(|| bad("no shape"))?.iter().filter_map(|v| v.as_u64().map(|v| v as usize)).collect();
        let [count, height, width, channels] = shape[..] else { return Err(bad("shape is not [N, H, W, C]")) };
        let mut data = Vec::with_capacity(count * height * width * channels);
        f.read_to_end(&mut data).at("read", path)?;
        if data.len() != count * height * width * channels {
            return Err(bad("data length does not match the shape"));
        }
        Ok(ImageTensor { count, height, width, channels, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = ImageTensor::new(2, 3, 1);
        t.push(&[1, 2, 3, 4, 5, 6]);
        t.push(&[7, 8, 9, 10, 11, 12]);
        let path = dir.path().join("images.safetensors");
        t.write(&path).unwrap();
        let back = ImageTensor::read(&path).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.image(1), &[7, 8, 9, 10, 11, 12]);
        fsx::write(&path, b"short").unwrap();
        assert!(ImageTensor::read(&path).unwrap_err().to_string().contains("not an image tensor file"));
    }
}
