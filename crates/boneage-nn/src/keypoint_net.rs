//! The key-point regressor (the paper's section 3): three VGG blocks (64, 128, 256),
//! then three fully connected layers with dropout between them, and six outputs —
//! x, y of the middle fingertip, thumb tip and capitate in `[−1, 1]`.

use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::blocks::{VggStack, elu, linear_stack};

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
    blocks: VggStack,
    fc: Vec<Linear>,
    out: Linear,
    dropout: Dropout,
}

impl KeypointNetConfig {
    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> KeypointNet {
        let (blocks, input, [h, w]) =
            VggStack::new(&self.features, [self.height, self.width], device);
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
        let x = self.blocks.forward(x);
        let mut x: Tensor<2> = x.flatten(1, 3);
        for fc in &self.fc {
            x = self.dropout.forward(elu(fc.forward(x)));
        }
        self.out.forward(x)
    }
}
