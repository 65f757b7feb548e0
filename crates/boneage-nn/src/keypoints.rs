//! The key-point regressor (the paper's section 3): three VGG blocks (64, 128, 256),
//! then three fully connected layers with dropout between them, and six outputs —
//! x, y of the middle fingertip, thumb tip and capitate in `[−1, 1]`.

use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::blocks::{VggBlock, elu, linear_stack, pooled, vgg_stack};

/// Key-point network settings.
#[derive(Config, Debug)]
pub struct KeypointNetConfig {
    /// Input height (the paper's 130).
    #[config(default = 130)]
    pub height: usize,
    /// Input width (the paper's 100).
    #[config(default = 100)]
    pub width: usize,
    /// VGG block widths.
    #[config(default = "vec![64, 128, 256]")]
    pub features: Vec<usize>,
    /// Hidden fully connected widths (two of them, then the 6 outputs).
    #[config(default = "vec![512, 256]")]
    pub hidden: Vec<usize>,
    /// Dropout probability between the fully connected layers.
    #[config(default = 0.5)]
    pub dropout: f64,
}

/// The key-point network.
#[derive(Module, Debug)]
pub struct KeypointNet {
    blocks: Vec<VggBlock>,
    fc: Vec<Linear>,
    out: Linear,
    dropout: Dropout,
}

impl KeypointNetConfig {
    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> KeypointNet {
        let (blocks, input) = vgg_stack(&self.features, device);
        let [h, w] = pooled([self.height, self.width], self.features.len());
        assert!(
            h > 0 && w > 0,
            "input {}x{} too small for {} blocks",
            self.height,
            self.width,
            self.features.len()
        );
        let (fc, n) = linear_stack(input * h * w, &self.hidden, device);
        KeypointNet {
            blocks,
            fc,
            out: LinearConfig::new(n, 6).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl KeypointNet {
    /// Key-point coordinates in `[−1, 1]` (not clamped): fingertip x, y, thumb x, y,
    /// capitate x, y.
    ///
    /// # Shapes
    /// `[batch, 1, height, width]` → `[batch, 6]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        for b in &self.blocks {
            x = b.forward(x);
        }
        let mut x: Tensor<2> = x.flatten(1, 3);
        for fc in &self.fc {
            x = self.dropout.forward(elu(fc.forward(x)));
        }
        self.out.forward(x)
    }
}
