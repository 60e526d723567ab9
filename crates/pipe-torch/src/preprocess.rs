//! What a network reads, as its weights expect it (timm's `PretrainedCfg`
//! idea: the preprocessing belongs to the network, not to the user's
//! memory): pixels scaled per channel, NCHW, then resized on the device.
//! pipe's own networks read 0..=255 scaled to -2..=2 (as they always
//! have); EfficientNet-Lite0 reads ImageNet's normalisation,
//! (x/255 − mean)/std per channel, since its published weights were
//! trained on that.

use tch::{Device, TchError, Tensor};

use pipe_core::data::dataset::Dataset;
use pipe_core::kinds::StageError;
use pipe_core::kinds::cnn::Arch;

/// ImageNet's per-channel mean and standard deviation (RGB).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// How pixel values become network inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scaling {
    /// 0..=255 to -2..=2, every channel alike.
    Symmetric,
    /// ImageNet's mean and standard deviation (RGB only).
    ImageNet,
}

/// Scaling and size of a network's input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    pub scaling: Scaling,
    /// The side images are resized to on the device (bilinear); `None`: as loaded.
    pub size: Option<i64>,
}

impl Preprocess {
    /// pipe's own networks at the images' own size.
    pub const SYMMETRIC: Preprocess = Preprocess { scaling: Scaling::Symmetric, size: None };

    /// What `arch` expects, at `input_size` (0: the images' own side), for
    /// images of `channels` planes and side `side`.
    pub fn of(arch: Arch, input_size: i64, channels: usize, side: usize) -> Result<Preprocess, StageError> {
        let scaling = match arch {
            Arch::EfficientNetLite0 if channels != 3 => {
                return Err(StageError::Failed(format!(
                    "arch = \"efficientnet-lite0\" reads RGB images, these have {channels} channel(s): load them in colour"
                )));
            }
            Arch::EfficientNetLite0 => Scaling::ImageNet,
            _ => Scaling::Symmetric,
        };
        let size = (input_size > 0 && input_size != side as i64).then_some(input_size);
        Ok(Preprocess { scaling, size })
    }

    /// The scaled value of pixel value `v` in channel `ch`.
    fn scale(&self, v: u8, ch: usize) -> f32 {
        match self.scaling {
            Scaling::Symmetric => f32::from(v) / 255.0 * 4.0 - 2.0,
            Scaling::ImageNet => (f32::from(v) / 255.0 - IMAGENET_MEAN[ch]) / IMAGENET_STD[ch],
        }
    }

    /// White, per channel, as scaled: what a shifted image is filled with.
    pub fn white(&self, channels: usize) -> Vec<f32> {
        (0..channels).map(|ch| self.scale(255, ch)).collect()
    }

    /// The pixels of images `rows`, NCHW, scaled.
    pub fn pixels(&self, data: &Dataset, rows: &[usize]) -> Vec<f32> {
        let (c, plane) = (data.pixels.channels, data.pixels.height * data.pixels.width);
        let mut out = vec![0f32; rows.len() * c * plane];
        for (k, &r) in rows.iter().enumerate() {
            let image = &mut out[k * c * plane..(k + 1) * c * plane];
            for (p, pixel) in data.pixels.image(r).chunks_exact(c).enumerate() {
                for (ch, &v) in pixel.iter().enumerate() {
                    image[ch * plane + p] = self.scale(v, ch);
                }
            }
        }
        out
    }

    /// A batch tensor of `pixels` (from [`Preprocess::pixels`]) on `device`,
    /// resized to the input size there.
    pub fn tensor(&self, data: &Dataset, rows: &[usize], pixels: &[f32], device: Device) -> Result<Tensor, TchError> {
        let (s, c) = (data.pixels.height as i64, data.pixels.channels as i64);
        let x = Tensor::f_from_slice(pixels)?.f_view([rows.len() as i64, c, s, s])?.f_to_device(device)?;
        match self.size {
            Some(size) => x.f_upsample_bilinear2d([size, size], false, None, None),
            None => Ok(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_network_reads_its_own_scaling() {
        let ours = Preprocess::of(Arch::Small, 0, 3, 64).unwrap();
        assert_eq!((ours.scale(0, 0), ours.scale(255, 2)), (-2.0, 2.0));
        assert_eq!(ours.size, None);
        let lite = Preprocess::of(Arch::EfficientNetLite0, 224, 3, 64).unwrap();
        assert!((lite.scale(255, 0) - (1.0 - 0.485) / 0.229).abs() < 1e-6);
        assert!((lite.scale(0, 2) + 0.406 / 0.225).abs() < 1e-6);
        assert_eq!(lite.size, Some(224));
        assert_eq!(Preprocess::of(Arch::EfficientNetLite0, 64, 3, 64).unwrap().size, None, "already that size");
        assert!(Preprocess::of(Arch::EfficientNetLite0, 0, 1, 64).is_err(), "ImageNet weights read RGB");
    }
}
