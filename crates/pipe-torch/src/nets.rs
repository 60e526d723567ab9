//! The networks a CNN stage can train (`arch`), each with the geometry its
//! name promises:
//! - `small`: a small-image (CIFAR-style) AlexNet variant: five
//!   convolutions (5×5, 5×5, 3×3 ×3, stride 1), 2×2 pools, three fully
//!   connected layers with dropout; `width` channels in the first
//!   convolution. Cheap at 32-96 pixels; not Krizhevsky's geometry.
//! - `alexnet`: Krizhevsky et al. 2012 as tch-rs's `vision::alexnet` builds
//!   it: 11×11 stride-4 first convolution, overlapping 3×3/2 pools, 6×6
//!   adaptive pool, 9216 → 4096 → 4096 (at `width` 64 and `hidden` 4096;
//!   both scale it).
//! - `resnet18`: He et al. 2016's ResNet-18 (basic blocks 2-2-2-2, batch
//!   norm, identity shortcuts, global average pool) with the small-image stem
//!   of the CIFAR ResNets (one 3×3 stride-1 convolution, no max pool), as
//!   the paper's future work suggests; `width` channels in the first stage
//!   (64 in the paper), doubling per stage.

use tch::Tensor;
use tch::nn::{self, ModuleT};

/// Which network, from the stage's `arch` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Small,
    AlexNet,
    ResNet18,
}

impl Arch {
    pub fn from_param(name: &str) -> Arch {
        match name {
            "alexnet" => Arch::AlexNet,
            "resnet18" => Arch::ResNet18,
            _ => Arch::Small,
        }
    }
}

/// The shape of a network: input channels, `width`, `hidden`, outputs,
/// batch norm (small only; always on in the ResNet, never in AlexNet), dropout.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub channels: i64,
    pub width: i64,
    pub hidden: i64,
    pub outputs: i64,
    pub batch_norm: bool,
    pub dropout: f64,
}

/// The variants carry the networks' published names, "Net" included.
#[allow(clippy::enum_variant_names)]
#[derive(Debug)]
pub enum Net {
    Small(Small),
    AlexNet(Box<AlexNet>),
    ResNet(Box<ResNet>),
}

impl Net {
    pub fn new(vs: &nn::Path, arch: Arch, shape: Shape) -> Net {
        match arch {
            Arch::Small => Net::Small(Small::new(vs, shape)),
            Arch::AlexNet => Net::AlexNet(Box::new(AlexNet::new(vs, shape))),
            Arch::ResNet18 => Net::ResNet(Box::new(ResNet::new(vs, shape))),
        }
    }
}

impl ModuleT for Net {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Net::Small(n) => n.forward_t(xs, train),
            Net::AlexNet(n) => n.forward_t(xs, train),
            Net::ResNet(n) => n.forward_t(xs, train),
        }
    }
}

/// AlexNet's classifier, shared by `small` and `alexnet`: dropout, two
/// hidden fully connected layers with ReLU, the output layer.
#[derive(Debug)]
struct Classifier {
    fc1: nn::Linear,
    fc2: nn::Linear,
    out: nn::Linear,
    dropout: f64,
}

impl Classifier {
    fn new(vs: &nn::Path, features: i64, s: Shape) -> Classifier {
        Classifier {
            fc1: nn::linear(vs / "fc1", features, s.hidden, Default::default()),
            fc2: nn::linear(vs / "fc2", s.hidden, s.hidden, Default::default()),
            out: nn::linear(vs / "out", s.hidden, s.outputs, Default::default()),
            dropout: s.dropout,
        }
    }

    fn forward_t(&self, features: &Tensor, train: bool) -> Tensor {
        features.dropout(self.dropout, train).apply(&self.fc1).relu().dropout(self.dropout, train).apply(&self.fc2).relu().apply(&self.out)
    }
}

/// See the module doc: `small`.
#[derive(Debug)]
pub struct Small {
    convs: Vec<(nn::Conv2D, Option<nn::BatchNorm>)>,
    head: Classifier,
}

impl Small {
    fn new(vs: &nn::Path, s: Shape) -> Small {
        let w = s.width;
        let plan = [(s.channels, w, 5, 2), (w, 3 * w, 5, 2), (3 * w, 6 * w, 3, 1), (6 * w, 4 * w, 3, 1), (4 * w, 4 * w, 3, 1)];
        let convs = plan
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout, k, pad))| {
                let conv = nn::conv2d(vs / format!("conv{i}"), cin, cout, k, nn::ConvConfig { padding: pad, ..Default::default() });
                let bn = s.batch_norm.then(|| nn::batch_norm2d(vs / format!("bn{i}"), cout, Default::default()));
                (conv, bn)
            })
            .collect();
        Small { convs, head: Classifier::new(vs, 4 * w * 4 * 4, s) }
    }
}

impl ModuleT for Small {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            x = x.apply(conv);
            if let Some(bn) = bn {
                x = x.apply_t(bn, train);
            }
            x = x.relu();
            if i == 0 || i == 1 || i == 4 {
                x = x.max_pool2d_default(2);
            }
        }
        self.head.forward_t(&x.adaptive_avg_pool2d([4, 4]).flatten(1, -1), train)
    }
}

/// See the module doc: `alexnet`.
#[derive(Debug)]
pub struct AlexNet {
    convs: [nn::Conv2D; 5],
    head: Classifier,
}

impl AlexNet {
    fn new(vs: &nn::Path, s: Shape) -> AlexNet {
        // Krizhevsky's channels at width 64: 64, 192, 384, 256, 256.
        let c = |base: i64| (base * s.width / 64).max(1);
        let conv = |name: &str, cin, cout, k, stride, pad| {
            nn::conv2d(vs / name, cin, cout, k, nn::ConvConfig { stride, padding: pad, ..Default::default() })
        };
        let convs = [
            conv("conv0", s.channels, c(64), 11, 4, 2),
            conv("conv1", c(64), c(192), 5, 1, 2),
            conv("conv2", c(192), c(384), 3, 1, 1),
            conv("conv3", c(384), c(256), 3, 1, 1),
            conv("conv4", c(256), c(256), 3, 1, 1),
        ];
        AlexNet { convs, head: Classifier::new(vs, c(256) * 6 * 6, s) }
    }

    /// The features before the classifier: N × (channels × 6 × 6), 9216 at width 64.
    pub fn features(&self, xs: &Tensor) -> Tensor {
        let pool = |x: Tensor| x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
        let [c0, c1, c2, c3, c4] = &self.convs;
        let x = pool(xs.apply(c0).relu());
        let x = pool(x.apply(c1).relu());
        let x = x.apply(c2).relu().apply(c3).relu().apply(c4).relu();
        pool(x).adaptive_avg_pool2d([6, 6]).flatten(1, -1)
    }
}

impl ModuleT for AlexNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.head.forward_t(&self.features(xs), train)
    }
}

/// A basic residual block: two 3×3 convolutions with batch norm, and a 1×1
/// projection on the shortcut when the shape changes.
#[derive(Debug)]
struct Block {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    shortcut: Option<(nn::Conv2D, nn::BatchNorm)>,
}

fn conv3(vs: nn::Path, cin: i64, cout: i64, stride: i64) -> nn::Conv2D {
    nn::conv2d(vs, cin, cout, 3, nn::ConvConfig { stride, padding: 1, bias: false, ..Default::default() })
}

impl Block {
    fn new(vs: &nn::Path, cin: i64, cout: i64, stride: i64) -> Block {
        let shortcut = (stride != 1 || cin != cout).then(|| {
            let c = nn::conv2d(vs / "down", cin, cout, 1, nn::ConvConfig { stride, bias: false, ..Default::default() });
            (c, nn::batch_norm2d(vs / "down_bn", cout, Default::default()))
        });
        Block {
            conv1: conv3(vs / "conv1", cin, cout, stride),
            bn1: nn::batch_norm2d(vs / "bn1", cout, Default::default()),
            conv2: conv3(vs / "conv2", cout, cout, 1),
            bn2: nn::batch_norm2d(vs / "bn2", cout, Default::default()),
            shortcut,
        }
    }
}

impl ModuleT for Block {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let y = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu().apply(&self.conv2).apply_t(&self.bn2, train);
        let s = match &self.shortcut {
            Some((c, bn)) => xs.apply(c).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (y + s).relu()
    }
}

/// See the module doc: `resnet18`.
#[derive(Debug)]
pub struct ResNet {
    stem: nn::Conv2D,
    stem_bn: nn::BatchNorm,
    blocks: Vec<Block>,
    out: nn::Linear,
    dropout: f64,
}

impl ResNet {
    fn new(vs: &nn::Path, s: Shape) -> ResNet {
        let w = s.width;
        let mut blocks = Vec::new();
        let mut cin = w;
        for (stage, (cout, stride)) in [(w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)].into_iter().enumerate() {
            for b in 0..2 {
                blocks.push(Block::new(&(vs / format!("layer{stage}_{b}")), cin, cout, if b == 0 { stride } else { 1 }));
                cin = cout;
            }
        }
        ResNet {
            stem: conv3(vs / "stem", s.channels, w, 1),
            stem_bn: nn::batch_norm2d(vs / "stem_bn", w, Default::default()),
            blocks,
            out: nn::linear(vs / "out", 8 * w, s.outputs, Default::default()),
            dropout: s.dropout,
        }
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.apply(&self.stem).apply_t(&self.stem_bn, train).relu();
        for b in &self.blocks {
            x = x.apply_t(b, train);
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1).dropout(self.dropout, train).apply(&self.out)
    }
}

/// Multiply-accumulates of one forward pass of one image, ×2 = FLOPs; for
/// the benchmark's GFLOP/s. Counts convolutions and linear layers only.
pub fn forward_flops(arch: Arch, shape: Shape, size: i64) -> f64 {
    let conv = |cin: i64, cout: i64, k: i64, out: i64| 2.0 * (cin * cout * k * k * out * out) as f64;
    let lin = |a: i64, b: i64| 2.0 * (a * b) as f64;
    let Shape { channels, width: w, hidden, outputs, .. } = shape;
    match arch {
        Arch::Small => {
            let (s1, s2, s3) = (size, size / 2, size / 4);
            conv(channels, w, 5, s1)
                + conv(w, 3 * w, 5, s2)
                + conv(3 * w, 6 * w, 3, s3)
                + conv(6 * w, 4 * w, 3, s3)
                + conv(4 * w, 4 * w, 3, s3)
                + lin(4 * w * 16, hidden)
                + lin(hidden, hidden)
                + lin(hidden, outputs)
        }
        Arch::AlexNet => {
            let c = |base: i64| (base * w / 64).max(1);
            let o1 = (size + 4 - 11) / 4 + 1;
            let p1 = (o1 - 3) / 2 + 1;
            let p2 = (p1 - 3) / 2 + 1;
            conv(channels, c(64), 11, o1)
                + conv(c(64), c(192), 5, p1)
                + conv(c(192), c(384), 3, p2)
                + conv(c(384), c(256), 3, p2)
                + conv(c(256), c(256), 3, p2)
                + lin(c(256) * 36, hidden)
                + lin(hidden, hidden)
                + lin(hidden, outputs)
        }
        Arch::ResNet18 => {
            let mut total = conv(channels, w, 3, size);
            let (mut cin, mut s) = (w, size);
            for (cout, stride) in [(w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)] {
                for b in 0..2 {
                    let st = if b == 0 { stride } else { 1 };
                    s /= st;
                    total += conv(cin, cout, 3, s) + conv(cout, cout, 3, s);
                    if st != 1 || cin != cout {
                        total += conv(cin, cout, 1, s);
                    }
                    cin = cout;
                }
            }
            total + lin(8 * w, outputs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn shape(width: i64, hidden: i64) -> Shape {
        Shape { channels: 3, width, hidden, outputs: 7, batch_norm: false, dropout: 0.5 }
    }

    #[test]
    fn alexnet_flattens_9216_features_at_224() {
        let vs = nn::VarStore::new(Device::Cpu);
        let Net::AlexNet(net) = Net::new(&vs.root(), Arch::AlexNet, shape(64, 4096)) else { panic!("an AlexNet") };
        let x = Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu));
        assert_eq!(net.features(&x).size(), [1, 9216]);
        assert_eq!(net.forward_t(&x, false).size(), [1, 7]);
        let conv0 = vs.variables().into_iter().find(|(n, _)| n == "conv0.weight").expect("first convolution").1;
        assert_eq!(conv0.size(), [64, 3, 11, 11], "Krizhevsky's 11x11 first convolution");
        // About 0.7 G multiply-accumulates (1.4 GFLOP) per image, not the small net's 15x that.
        let gflop = forward_flops(Arch::AlexNet, shape(64, 4096), 224) / 1e9;
        assert!((1.3..1.6).contains(&gflop), "{gflop}");
    }

    #[test]
    fn every_arch_maps_images_to_one_score_per_output() {
        for (arch, side) in [(Arch::Small, 64), (Arch::ResNet18, 64), (Arch::ResNet18, 32), (Arch::AlexNet, 96)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Net::new(&vs.root(), arch, shape(8, 32));
            let x = Tensor::zeros([2, 3, side, side], (Kind::Float, Device::Cpu));
            assert_eq!(net.forward_t(&x, true).size(), [2, 7], "{arch:?} at {side}");
        }
    }

    #[test]
    fn resnet18_has_eight_basic_blocks_and_a_small_image_stem() {
        let vs = nn::VarStore::new(Device::Cpu);
        let Net::ResNet(net) = Net::new(&vs.root(), Arch::ResNet18, shape(64, 0)) else { panic!("a ResNet") };
        assert_eq!(net.blocks.len(), 8);
        let stem = vs.variables().into_iter().find(|(n, _)| n == "stem.weight").expect("stem").1;
        assert_eq!(stem.size(), [64, 3, 3, 3], "3x3 stride-1 stem, not ImageNet's 7x7/2");
        let params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert!((11_000_000..11_300_000).contains(&params), "ResNet-18's ~11.2 M parameters: {params}");
    }
}
