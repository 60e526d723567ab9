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
//! - `efficientnet-lite0`: see `efficientnet.rs`; ImageNet's geometry and
//!   tensor names, so that its published weights load.
//!
//! Every network makes its output layer in optimiser group 1 and the rest
//! in group 0, so the backbone can learn at a lower rate than the new head
//! (`backbone_lr`), and names it [`Net::head`] for loading weights.

use tch::nn;
use tch::{TchError, Tensor};

/// Which network, from the stage's `arch` parameter.
pub use pipe_core::kinds::cnn::Arch;

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
    EfficientNet(Box<crate::efficientnet::EfficientNetLite>),
}

impl Net {
    pub fn new(vs: &nn::Path, arch: Arch, shape: Shape) -> Net {
        match arch {
            Arch::Small => Net::Small(Small::new(vs, shape)),
            Arch::AlexNet => Net::AlexNet(Box::new(AlexNet::new(vs, shape))),
            Arch::ResNet18 => Net::ResNet(Box::new(ResNet::new(vs, shape))),
            Arch::EfficientNetLite0 => Net::EfficientNet(Box::new(crate::efficientnet::EfficientNetLite::lite0(
                vs,
                &vs.set_group(HEAD_GROUP),
                shape.channels,
                shape.outputs,
                shape.dropout,
            ))),
        }
    }

    /// The name prefix of the output layer, whose tensors depend on the
    /// task's classes: a weights file's are replaced, not loaded.
    pub fn head(&self) -> &'static str {
        match self {
            Net::EfficientNet(_) => crate::efficientnet::HEAD,
            _ => "out",
        }
    }
}

/// The optimiser group of every network's output layer (the rest: 0).
pub const HEAD_GROUP: usize = 1;

impl Net {
    /// The forward pass (`train`: dropout on, batch statistics used and
    /// updated), with libtorch's fallible calls: a shape that does not fit
    /// the network is an error, not a panic.
    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        match self {
            Net::Small(n) => n.f_forward_t(xs, train),
            Net::AlexNet(n) => n.f_forward_t(xs, train),
            Net::ResNet(n) => n.f_forward_t(xs, train),
            Net::EfficientNet(n) => n.f_forward_t(xs, train),
        }
    }
}

/// A 2-D convolution (zero padding, no dilation, one group) whose forward
/// pass is libtorch's fallible call; `nn::Conv2D` keeps its configuration
/// private, so the stride and padding are kept here too.
#[derive(Debug)]
struct Conv {
    conv: nn::Conv2D,
    stride: i64,
    padding: i64,
}

impl Conv {
    fn new(vs: nn::Path, cin: i64, cout: i64, k: i64, config: nn::ConvConfig) -> Conv {
        Conv { conv: nn::conv2d(vs, cin, cout, k, config), stride: config.stride, padding: config.padding }
    }

    fn f_forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        xs.f_conv2d(&self.conv.ws, self.conv.bs.as_ref(), [self.stride; 2], [self.padding; 2], [1, 1], 1)
    }
}

/// Batch normalisation with the default configuration (momentum 0.1,
/// epsilon 1e-5), as `nn::BatchNorm`'s forward pass but fallible.
#[derive(Debug)]
struct Norm(nn::BatchNorm);

impl Norm {
    fn new(vs: nn::Path, channels: i64) -> Norm {
        Norm(nn::batch_norm2d(vs, channels, Default::default()))
    }

    fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let c = nn::BatchNormConfig::default();
        let bn = &self.0;
        xs.f_batch_norm(
            bn.ws.as_ref(),
            bn.bs.as_ref(),
            Some(&bn.running_mean),
            Some(&bn.running_var),
            train,
            c.momentum,
            c.eps,
            c.cudnn_enabled,
        )
    }
}

/// A fully connected layer's forward pass, fallible.
fn f_linear(xs: &Tensor, l: &nn::Linear) -> Result<Tensor, TchError> {
    xs.f_linear(&l.ws, l.bs.as_ref())
}

/// `size`×`size` max pooling with stride `stride`, fallible.
fn f_max_pool(xs: &Tensor, size: i64, stride: i64) -> Result<Tensor, TchError> {
    xs.f_max_pool2d([size, size], [stride, stride], [0, 0], [1, 1], false)
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
            out: nn::linear(vs.set_group(HEAD_GROUP) / "out", s.hidden, s.outputs, Default::default()),
            dropout: s.dropout,
        }
    }

    fn f_forward_t(&self, features: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let x = f_linear(&features.f_dropout(self.dropout, train)?, &self.fc1)?.f_relu()?;
        let x = f_linear(&x.f_dropout(self.dropout, train)?, &self.fc2)?.f_relu()?;
        f_linear(&x, &self.out)
    }
}

/// See the module doc: `small`.
#[derive(Debug)]
pub struct Small {
    convs: Vec<(Conv, Option<Norm>)>,
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
                let conv = Conv::new(vs / format!("conv{i}"), cin, cout, k, nn::ConvConfig { padding: pad, ..Default::default() });
                let bn = s.batch_norm.then(|| Norm::new(vs / format!("bn{i}"), cout));
                (conv, bn)
            })
            .collect();
        Small { convs, head: Classifier::new(vs, 4 * w * 4 * 4, s) }
    }
}

impl Small {
    fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let mut x = xs.shallow_clone();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            x = conv.f_forward(&x)?;
            if let Some(bn) = bn {
                x = bn.f_forward_t(&x, train)?;
            }
            x = x.f_relu()?;
            if i == 0 || i == 1 || i == 4 {
                x = f_max_pool(&x, 2, 2)?;
            }
        }
        self.head.f_forward_t(&x.f_adaptive_avg_pool2d([4, 4])?.f_flatten(1, -1)?, train)
    }
}

/// See the module doc: `alexnet`.
#[derive(Debug)]
pub struct AlexNet {
    convs: [Conv; 5],
    head: Classifier,
}

impl AlexNet {
    fn new(vs: &nn::Path, s: Shape) -> AlexNet {
        // Krizhevsky's channels at width 64: 64, 192, 384, 256, 256.
        let c = |base: i64| (base * s.width / 64).max(1);
        let conv = |name: &str, cin, cout, k, stride, pad| {
            Conv::new(vs / name, cin, cout, k, nn::ConvConfig { stride, padding: pad, ..Default::default() })
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
    pub fn f_features(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        let [c0, c1, c2, c3, c4] = &self.convs;
        let x = f_max_pool(&c0.f_forward(xs)?.f_relu()?, 3, 2)?;
        let x = f_max_pool(&c1.f_forward(&x)?.f_relu()?, 3, 2)?;
        let x = c2.f_forward(&x)?.f_relu()?;
        let x = c3.f_forward(&x)?.f_relu()?;
        let x = c4.f_forward(&x)?.f_relu()?;
        f_max_pool(&x, 3, 2)?.f_adaptive_avg_pool2d([6, 6])?.f_flatten(1, -1)
    }

    fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        self.head.f_forward_t(&self.f_features(xs)?, train)
    }
}

/// A basic residual block: two 3×3 convolutions with batch norm, and a 1×1
/// projection on the shortcut when the shape changes.
#[derive(Debug)]
struct Block {
    conv1: Conv,
    bn1: Norm,
    conv2: Conv,
    bn2: Norm,
    shortcut: Option<(Conv, Norm)>,
}

fn conv3(vs: nn::Path, cin: i64, cout: i64, stride: i64) -> Conv {
    Conv::new(vs, cin, cout, 3, nn::ConvConfig { stride, padding: 1, bias: false, ..Default::default() })
}

impl Block {
    fn new(vs: &nn::Path, cin: i64, cout: i64, stride: i64) -> Block {
        let shortcut = (stride != 1 || cin != cout).then(|| {
            let c = Conv::new(vs / "down", cin, cout, 1, nn::ConvConfig { stride, bias: false, ..Default::default() });
            (c, Norm::new(vs / "down_bn", cout))
        });
        Block {
            conv1: conv3(vs / "conv1", cin, cout, stride),
            bn1: Norm::new(vs / "bn1", cout),
            conv2: conv3(vs / "conv2", cout, cout, 1),
            bn2: Norm::new(vs / "bn2", cout),
            shortcut,
        }
    }
}

impl Block {
    fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let y = self.bn1.f_forward_t(&self.conv1.f_forward(xs)?, train)?.f_relu()?;
        let y = self.bn2.f_forward_t(&self.conv2.f_forward(&y)?, train)?;
        let s = match &self.shortcut {
            Some((c, bn)) => bn.f_forward_t(&c.f_forward(xs)?, train)?,
            None => xs.shallow_clone(),
        };
        y.f_add(&s)?.f_relu()
    }
}

/// See the module doc: `resnet18`.
#[derive(Debug)]
pub struct ResNet {
    stem: Conv,
    stem_bn: Norm,
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
            stem_bn: Norm::new(vs / "stem_bn", w),
            blocks,
            out: nn::linear(vs.set_group(HEAD_GROUP) / "out", 8 * w, s.outputs, Default::default()),
            dropout: s.dropout,
        }
    }
}

impl ResNet {
    fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let mut x = self.stem_bn.f_forward_t(&self.stem.f_forward(xs)?, train)?.f_relu()?;
        for b in &self.blocks {
            x = b.f_forward_t(&x, train)?;
        }
        f_linear(&x.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)?.f_dropout(self.dropout, train)?, &self.out)
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
        Arch::EfficientNetLite0 => crate::efficientnet::EfficientNetLite::flops(channels, outputs, size),
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
        assert_eq!(net.f_features(&x).unwrap().size(), [1, 9216]);
        assert_eq!(net.f_forward_t(&x, false).unwrap().size(), [1, 7]);
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
            assert_eq!(net.f_forward_t(&x, true).unwrap().size(), [2, 7], "{arch:?} at {side}");
        }
    }

    #[test]
    fn an_input_the_network_cannot_take_is_an_error_not_a_panic() {
        let vs = nn::VarStore::new(Device::Cpu);
        let alexnet = Net::new(&vs.root(), Arch::AlexNet, shape(8, 32));
        // 16 pixels: AlexNet's stride-4 convolution and pools leave nothing to pool.
        let small_image = Tensor::zeros([1, 3, 16, 16], (Kind::Float, Device::Cpu));
        assert!(alexnet.f_forward_t(&small_image, false).is_err());
        for arch in [Arch::Small, Arch::ResNet18] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Net::new(&vs.root(), arch, Shape { batch_norm: true, ..shape(8, 32) });
            let one_channel = Tensor::zeros([2, 1, 32, 32], (Kind::Float, Device::Cpu));
            assert!(net.f_forward_t(&one_channel, true).is_err(), "{arch:?}");
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
