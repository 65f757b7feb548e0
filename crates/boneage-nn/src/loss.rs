//! Losses: the U-Net's `BCE − log J`, and the regression losses.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, sigmoid};

/// Mean binary cross-entropy of mask logits against 0/1 targets, computed from the
/// logits so that it stays finite for saturated outputs.
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    // max(z, 0) − z·y + log(1 + exp(−|z|))
    let z = logits;
    let pos = z.clone().clamp_min(0.0);
    let log_term = (z.clone().abs().neg().exp() + 1.0).log();
    (pos - z * target + log_term).mean()
}

/// The soft Jaccard index of the paper's Eq. 3 between probabilities and targets.
///
/// Read literally, Eq. 3 averages `y·ŷ / (y + ŷ − y·ŷ)` per pixel, which is 0 on every
/// background pixel, so it could never reach 1; the authors' code (and TernausNet, the
/// paper's reference \[8\]) sums numerator and denominator over the batch instead, which
/// is what this computes: `Σ y·ŷ / Σ (y + ŷ − y·ŷ)`, with ε = 1e-7 against 0/0.
pub fn soft_jaccard<const D: usize>(prob: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    let inter = (prob.clone() * target.clone()).sum();
    let union = (prob + target).sum() - inter.clone();
    (inter + 1e-7) / (union + 1e-7)
}

/// The U-Net loss of the paper's Eq. 1: `L = H − log J`.
pub fn bce_minus_log_jaccard<const D: usize>(logits: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    let h = bce_with_logits(logits.clone(), target.clone());
    let j = soft_jaccard(sigmoid(logits), target);
    h - j.log()
}

/// Mean squared error.
pub fn mse<const D: usize>(pred: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    let d = pred - target;
    (d.clone() * d).mean()
}

/// Mean absolute error.
pub fn mae<const D: usize>(pred: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    (pred - target).abs().mean()
}

/// Cross-entropy of each row's softmax against a target distribution over the same
/// classes, averaged over rows: `−Σ t · log softmax(z)`.
///
/// # Shapes
/// `[rows, classes]` logits and targets (each target row sums to 1)
pub fn soft_cross_entropy(logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let rows = logits.dims()[0];
    (log_softmax(logits, 1) * target).sum().neg() / rows as f32
}
