//! The kernels of [`crate::kernels`] (3×3 "same" convolution; batch norm fused with
//! ELU; 2×2 max pooling) plugged into burn through its backend-extension mechanism: an extension trait
//! implemented for the flex backend (the kernels) and for `Autodiff` (handwritten
//! backward passes that call the kernels' gradients).
//!
//! [`conv3x3`], [`batch_norm_elu`] and [`max_pool2`] are what the networks call: on a flex device
//! (with or without autodiff) they run these kernels, on any other device burn's own
//! operations.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, DispatchDevice, Flex, TensorMetadata,
    backend_extension,
};
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};

use crate::kernels::{Act, BnAct, Conv3x3, MaxPool2};
use crate::mobile_kernels::{Depthwise, Pointwise};

/// Backends with the fast 3×3 convolution.
#[backend_extension(Flex, Autodiff)]
pub trait FastOps: Backend {
    /// `[batch, cin, H, W]` ⊛ `[cout, cin, 3, 3]` → `[batch, cout, H, W]` (stride 1,
    /// padding 1, no bias).
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The input's gradient from the weights and the output's gradient.
    fn conv3x3_input_grad(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// The weights' gradient from the input and the output's gradient.
    fn conv3x3_weight_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// Batch norm with the batch's statistics, then ELU: `(output, mean, variance)`
    /// of `x` `[batch, channels, H, W]` (variance biased, as burn's `batch_norm_train`).
    fn bn_act_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        act: Act,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// Gradients `(x, gamma, beta)` of [`FastOps::bn_act_train`] from its input, its
    /// output, its statistics and the output's gradient.
    #[allow(clippy::too_many_arguments)]
    fn bn_act_train_backward(
        x: FloatTensor<Self>,
        output: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        act: Act,
        output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// 2×2 max pooling with stride 2 of `[batch, channels, H, W]`.
    fn max_pool2(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Gradient of [`FastOps::max_pool2`]'s input from its input, output and output
    /// gradient.
    fn max_pool2_backward(
        x: FloatTensor<Self>,
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// Depthwise k×k convolution, `[batch, C, H, W]` ⊛ `[C, 1, k, k]` with `stride`
    /// and padding `(k − 1) / 2`, no bias.
    fn depthwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self>;
    /// The input's gradient of [`FastOps::depthwise`] (input of `height`×`width`).
    fn depthwise_input_grad(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        height: usize,
        width: usize,
        stride: usize,
    ) -> FloatTensor<Self>;
    /// The weights' gradient of [`FastOps::depthwise`].
    fn depthwise_weight_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        kernel: usize,
        stride: usize,
    ) -> FloatTensor<Self>;
    /// 1×1 convolution, `[batch, cin, H, W]` and `[cout, cin, 1, 1]` → `[batch, cout,
    /// H, W]`, no bias.
    fn pointwise(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The input's gradient of [`FastOps::pointwise`].
    fn pointwise_input_grad(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// The weights' gradient of [`FastOps::pointwise`].
    fn pointwise_weight_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// Batch norm with given (running) statistics, then ELU; no gradient.
    fn bn_act(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        act: Act,
    ) -> FloatTensor<Self>;
}

fn options() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

/// The values of an `f32` flex tensor as one contiguous slice (copied only when the
/// tensor is not contiguous).
fn with_f32<R>(t: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
    match t.as_slice::<f32>() {
        Some(s) => f(s),
        None => f(t.to_contiguous().as_slice::<f32>().expect("contiguous f32")),
    }
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

fn flex(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn is_f32(ts: &[&FlexTensor]) -> bool {
    ts.iter().all(|t| t.dtype() == DType::F32)
}

fn flex1(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::from_data(TensorData::new(values, [n]))
}

fn bn_shape(x: &FlexTensor, act: Act) -> BnAct {
    let s = x.shape();
    BnAct {
        batch: s[0],
        channels: s[1],
        plane: s.num_elements() / (s[0] * s[1]).max(1),
        act,
    }
}

fn f32s(t: &FlexTensor) -> Vec<f32> {
    with_f32(t, <[f32]>::to_vec)
}

impl FastOps for Flex {
    fn conv3x3(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        if !is_f32(&[&x, &weight]) {
            return Flex::conv2d(x, weight, None, options());
        }
        let [batch, cin, height, width] = dims4(&x);
        let cout = weight.shape()[0];
        let s = Conv3x3 {
            batch,
            cin,
            cout,
            height,
            width,
        };
        let y = with_f32(&x, |x| with_f32(&weight, |w| s.forward(x, w)));
        flex(y, [batch, cout, height, width])
    }

    fn conv3x3_input_grad(weight: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let [cout, cin, _, _] = dims4(&weight);
        let [batch, _, height, width] = dims4(&output_grad);
        let s = Conv3x3 {
            batch,
            cin,
            cout,
            height,
            width,
        };
        let dx = with_f32(&weight, |w| with_f32(&output_grad, |g| s.input_grad(w, g)));
        flex(dx, [batch, cin, height, width])
    }

    fn conv3x3_weight_grad(x: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let [batch, cin, height, width] = dims4(&x);
        let cout = output_grad.shape()[1];
        let s = Conv3x3 {
            batch,
            cin,
            cout,
            height,
            width,
        };
        let dw = with_f32(&x, |x| with_f32(&output_grad, |g| s.weight_grad(x, g)));
        flex(dw, [cout, cin, 3, 3])
    }

    fn depthwise(x: FlexTensor, weight: FlexTensor, stride: usize) -> FlexTensor {
        let [batch, channels, height, width] = dims4(&x);
        let kernel = weight.shape()[2];
        let d = Depthwise {
            batch,
            channels,
            height,
            width,
            kernel,
            stride,
        };
        let (oh, ow) = d.out();
        let y = with_f32(&x, |x| with_f32(&weight, |w| d.forward(x, w)));
        flex(y, [batch, channels, oh, ow])
    }

    fn depthwise_input_grad(
        weight: FlexTensor,
        output_grad: FlexTensor,
        height: usize,
        width: usize,
        stride: usize,
    ) -> FlexTensor {
        let [batch, channels, _, _] = dims4(&output_grad);
        let d = Depthwise {
            batch,
            channels,
            height,
            width,
            kernel: weight.shape()[2],
            stride,
        };
        let dx = with_f32(&weight, |w| with_f32(&output_grad, |g| d.input_grad(w, g)));
        flex(dx, [batch, channels, height, width])
    }

    fn depthwise_weight_grad(
        x: FlexTensor,
        output_grad: FlexTensor,
        kernel: usize,
        stride: usize,
    ) -> FlexTensor {
        let [batch, channels, height, width] = dims4(&x);
        let d = Depthwise {
            batch,
            channels,
            height,
            width,
            kernel,
            stride,
        };
        let dw = with_f32(&x, |x| with_f32(&output_grad, |g| d.weight_grad(x, g)));
        flex(dw, [channels, 1, kernel, kernel])
    }

    fn pointwise(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        let [batch, cin, height, width] = dims4(&x);
        let cout = weight.shape()[0];
        let p = Pointwise {
            batch,
            cin,
            cout,
            plane: height * width,
        };
        let y = with_f32(&x, |x| with_f32(&weight, |w| p.forward(x, w)));
        flex(y, [batch, cout, height, width])
    }

    fn pointwise_input_grad(weight: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let [cout, cin, _, _] = dims4(&weight);
        let [batch, _, height, width] = dims4(&output_grad);
        let p = Pointwise {
            batch,
            cin,
            cout,
            plane: height * width,
        };
        let dx = with_f32(&weight, |w| with_f32(&output_grad, |g| p.input_grad(w, g)));
        flex(dx, [batch, cin, height, width])
    }

    fn pointwise_weight_grad(x: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let [batch, cin, height, width] = dims4(&x);
        let cout = output_grad.shape()[1];
        let p = Pointwise {
            batch,
            cin,
            cout,
            plane: height * width,
        };
        let dw = with_f32(&x, |x| with_f32(&output_grad, |g| p.weight_grad(x, g)));
        flex(dw, [cout, cin, 1, 1])
    }

    fn max_pool2(x: FlexTensor) -> FlexTensor {
        let [b, c, h, w] = dims4(&x);
        let p = MaxPool2 {
            planes: b * c,
            height: h,
            width: w,
        };
        let (oh, ow) = p.out();
        flex(with_f32(&x, |x| p.forward(x)), [b, c, oh, ow])
    }

    fn max_pool2_backward(
        x: FlexTensor,
        output: FlexTensor,
        output_grad: FlexTensor,
    ) -> FlexTensor {
        let [b, c, h, w] = dims4(&x);
        let p = MaxPool2 {
            planes: b * c,
            height: h,
            width: w,
        };
        let dx = with_f32(&x, |x| {
            with_f32(&output, |y| with_f32(&output_grad, |g| p.backward(x, y, g)))
        });
        flex(dx, [b, c, h, w])
    }

    fn bn_act_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        act: Act,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let s = bn_shape(&x, act);
        let shape = x.shape();
        let t = with_f32(&x, |x| {
            s.forward_train(x, &f32s(&gamma), &f32s(&beta), epsilon)
        });
        let out = FlexTensor::from_data(TensorData::new(t.output, shape));
        (out, flex1(t.mean), flex1(t.var))
    }

    fn bn_act_train_backward(
        x: FlexTensor,
        output: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        act: Act,
        output_grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let s = bn_shape(&x, act);
        let shape = x.shape();
        let g = with_f32(&x, |x| {
            with_f32(&output, |y| {
                with_f32(&output_grad, |dy| {
                    s.backward(
                        x,
                        y,
                        &f32s(&gamma),
                        &f32s(&mean),
                        &f32s(&variance),
                        epsilon,
                        dy,
                    )
                })
            })
        });
        let dx = FlexTensor::from_data(TensorData::new(g.x, shape));
        (dx, flex1(g.gamma), flex1(g.beta))
    }

    fn bn_act(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        act: Act,
    ) -> FlexTensor {
        let s = bn_shape(&x, act);
        let shape = x.shape();
        let y = with_f32(&x, |x| {
            s.forward_with(
                x,
                &f32s(&gamma),
                &f32s(&beta),
                &f32s(&mean),
                &f32s(&variance),
                epsilon,
            )
        });
        FlexTensor::from_data(TensorData::new(y, shape))
    }
}

/// The backward step of [`FastOps::max_pool2`].
#[derive(Debug)]
struct MaxPool2Backward;

impl<B: FastOps> Backward<B, 1> for MaxPool2Backward {
    type State = (NodeId, B::FloatTensorPrimitive);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, output) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::max_pool2_backward(x, output, grad));
        }
    }
}

/// The backward step of [`FastOps::bn_act_train`].
#[derive(Debug)]
struct BnActBackward;

impl<B: FastOps> Backward<B, 3> for BnActBackward {
    // x and gamma checkpointed; the output and the statistics as the forward made them.
    type State = (
        NodeId,
        NodeId,
        B::FloatTensorPrimitive,
        B::FloatTensorPrimitive,
        B::FloatTensorPrimitive,
        f64,
        Act,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, output, mean, variance, epsilon, act) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let gamma = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(gamma_state);
        let (dx, dgamma, dbeta) =
            B::bn_act_train_backward(x, output, gamma, mean, variance, epsilon, act, grad);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<B>(node.id, dgamma);
        }
        if let Some(node) = node_beta {
            grads.register::<B>(node.id, dbeta);
        }
    }
}

/// The backward step of [`FastOps::conv3x3`].
#[derive(Debug)]
struct Conv3x3Backward;

impl<B: FastOps> Backward<B, 2> for Conv3x3Backward {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, w_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::conv3x3_input_grad(w, grad.clone()));
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::conv3x3_weight_grad(x, grad));
        }
    }
}

/// The backward step of [`FastOps::depthwise`].
#[derive(Debug)]
struct DepthwiseBackward;

impl<B: FastOps> Backward<B, 2> for DepthwiseBackward {
    /// x and the weights checkpointed; input height, width, kernel and stride.
    type State = (NodeId, NodeId, [usize; 4]);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, w_state, [h, w, k, s]) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let wt = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::depthwise_input_grad(wt, grad.clone(), h, w, s));
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::depthwise_weight_grad(x, grad, k, s));
        }
    }
}

/// The backward step of [`FastOps::pointwise`].
#[derive(Debug)]
struct PointwiseBackward;

impl<B: FastOps> Backward<B, 2> for PointwiseBackward {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, w_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::pointwise_input_grad(w, grad.clone()));
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::pointwise_weight_grad(x, grad));
        }
    }
}

impl<B: FastOps, C: CheckpointStrategy> FastOps for Autodiff<B, C> {
    fn depthwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        let xs = x.primitive().shape();
        let k = weight.primitive().shape()[2];
        let dims = [xs[2], xs[3], k, stride];
        match DepthwiseBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), dims);
                let y = B::depthwise(x.into_primitive(), weight.into_primitive(), stride);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::depthwise(
                x.into_primitive(),
                weight.into_primitive(),
                stride,
            )),
        }
    }

    fn depthwise_input_grad(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        height: usize,
        width: usize,
        stride: usize,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::depthwise_input_grad(
            Self::inner(weight),
            Self::inner(output_grad),
            height,
            width,
            stride,
        ))
    }

    fn depthwise_weight_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        kernel: usize,
        stride: usize,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::depthwise_weight_grad(
            Self::inner(x),
            Self::inner(output_grad),
            kernel,
            stride,
        ))
    }

    fn pointwise(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        match PointwiseBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                let y = B::pointwise(x.into_primitive(), weight.into_primitive());
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::pointwise(x.into_primitive(), weight.into_primitive()))
            }
        }
    }

    fn pointwise_input_grad(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::pointwise_input_grad(
            Self::inner(weight),
            Self::inner(output_grad),
        ))
    }

    fn pointwise_weight_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::pointwise_weight_grad(
            Self::inner(x),
            Self::inner(output_grad),
        ))
    }

    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        match Conv3x3Backward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                let y = B::conv3x3(x.into_primitive(), weight.into_primitive());
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::conv3x3(x.into_primitive(), weight.into_primitive()))
            }
        }
    }

    // Gradients of gradients are not needed: these two are plain computations.
    fn conv3x3_input_grad(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::conv3x3_input_grad(
            Self::inner(weight),
            Self::inner(output_grad),
        ))
    }

    fn conv3x3_weight_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::conv3x3_weight_grad(
            Self::inner(x),
            Self::inner(output_grad),
        ))
    }

    fn max_pool2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxPool2Backward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let xs = prep.checkpoint(&x);
                let y = B::max_pool2(x.into_primitive());
                prep.finish((xs, y.clone()), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool2(x.into_primitive())),
        }
    }

    fn max_pool2_backward(
        x: FloatTensor<Self>,
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::max_pool2_backward(
            Self::inner(x),
            Self::inner(output),
            Self::inner(output_grad),
        ))
    }

    fn bn_act_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        act: Act,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match BnActBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (xs, gs) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
                let (y, mean, var) = B::bn_act_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    act,
                );
                let state = (xs, gs, y.clone(), mean.clone(), var.clone(), epsilon, act);
                let y = prep.finish(state, y);
                (y, Self::from_inner(mean), Self::from_inner(var))
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = B::bn_act_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    act,
                );
                (
                    prep.finish(y),
                    Self::from_inner(mean),
                    Self::from_inner(var),
                )
            }
        }
    }

    fn bn_act_train_backward(
        x: FloatTensor<Self>,
        output: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        act: Act,
        output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dg, db) = B::bn_act_train_backward(
            Self::inner(x),
            Self::inner(output),
            Self::inner(gamma),
            Self::inner(mean),
            Self::inner(variance),
            epsilon,
            act,
            Self::inner(output_grad),
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dg),
            Self::from_inner(db),
        )
    }

    fn bn_act(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        act: Act,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::bn_act(
            Self::inner(x),
            Self::inner(gamma),
            Self::inner(beta),
            Self::inner(mean),
            Self::inner(variance),
            epsilon,
            act,
        ))
    }
}

/// Whether tensors on `device` run on the flex backend (with or without autodiff).
pub fn is_flex(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    )
}

/// Whether this crate's kernels run for tensors on `device`: on flex, unless the
/// environment sets `BONEAGE_BURN_OPS` (to any value), which keeps every operation
/// on burn's own (slower) ops — a diagnostic, to tell a kernel's fault from another.
pub fn use_kernels(device: &Device) -> bool {
    static BURN_OPS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    is_flex(device) && !*BURN_OPS.get_or_init(|| std::env::var_os("BONEAGE_BURN_OPS").is_some())
}

/// Batch norm then ELU, as `elu(norm.forward(x))` (see [`batch_norm_act`]).
pub fn batch_norm_elu(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    batch_norm_act(norm, x, Act::Elu)
}

/// `act` written with burn's operations.
fn activation(x: Tensor<4>, act: Act) -> Tensor<4> {
    match act {
        Act::Elu => crate::blocks::elu(x),
        Act::Relu6 => x.clamp(0.0, 6.0),
        Act::Identity => x,
    }
}

/// Batch norm then `act`, as `act(norm.forward(x))`: in training (an autodiff device
/// and the layer's training flag on) with the batch's statistics, updating the
/// running ones with the layer's momentum as burn's `BatchNorm` does; otherwise with
/// the running statistics. On flex the fused kernels; elsewhere burn's batch norm and
/// activation.
pub fn batch_norm_act(norm: &BatchNorm, x: Tensor<4>, act: Act) -> Tensor<4> {
    let device = x.device();
    let training = device.is_autodiff() && norm.training.is_enabled();
    if !use_kernels(&device) || (device.is_autodiff() && !training) {
        return activation(norm.forward(x), act);
    }
    let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
    if !training {
        let y = <Dispatch as FastOps>::bn_act(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            norm.running_mean.value().into_dispatch(),
            norm.running_var.value().into_dispatch(),
            norm.epsilon,
            act,
        );
        return Tensor::from_dispatch(y);
    }
    let (y, mean, var) = <Dispatch as FastOps>::bn_act_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        norm.epsilon,
        act,
    );
    let (mean, var) = (
        Tensor::<1>::from_dispatch(mean),
        Tensor::<1>::from_dispatch(var),
    );
    let m = norm.momentum;
    let running_mean = norm
        .running_mean
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(mean.detach().mul_scalar(m));
    let running_var = norm
        .running_var
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(var.detach().mul_scalar(m));
    norm.running_mean.update(running_mean.detach());
    norm.running_var.update(running_var.detach());
    Tensor::from_dispatch(y)
}

/// 2×2 max pooling with stride 2 (`[batch, channels, H, W]` → `[…, H / 2, W / 2]`,
/// floor), as burn's `MaxPool2d` with kernel `[2, 2]`. On flex this crate's kernel;
/// elsewhere, or for a pool configured otherwise, `pool.forward(x)`.
pub fn max_pool2(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let plain = pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, burn::nn::PaddingConfig2d::Valid);
    if plain && use_kernels(&x.device()) {
        Tensor::from_dispatch(<Dispatch as FastOps>::max_pool2(x.into_dispatch()))
    } else {
        pool.forward(x)
    }
}

/// 3×3 convolution with stride 1, padding 1 and no bias: `[batch, cin, H, W]` and
/// weights `[cout, cin, 3, 3]` → `[batch, cout, H, W]`. On flex the kernels of
/// [`crate::kernels`]; elsewhere burn's `conv2d`.
pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    if use_kernels(&x.device()) {
        Tensor::from_dispatch(<Dispatch as FastOps>::conv3x3(
            x.into_dispatch(),
            weight.into_dispatch(),
        ))
    } else {
        burn::tensor::module::conv2d(x, weight, None, options())
    }
}

/// `conv.forward(x)`, on flex through this crate's kernels when the convolution is a
/// depthwise one (groups = channels, square odd kernel, padding `(k − 1) / 2`) or a
/// 1×1 one (stride 1, no padding), without bias or dilation; otherwise burn's.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [cout, cin_per_group, kh, kw] = conv.weight.shape().dims();
    let plain = conv.bias.is_none() && conv.dilation == [1, 1] && use_kernels(&x.device());
    let pad = match &conv.padding {
        burn::nn::PaddingConfig2d::Explicit(t, l, b, r) if t == l && t == b && t == r => Some(*t),
        burn::nn::PaddingConfig2d::Valid => Some(0),
        _ => None,
    };
    let [_, cin, _, _] = x.dims();
    if plain && kh == kw && conv.stride[0] == conv.stride[1] {
        if kh == 1 && conv.groups == 1 && conv.stride == [1, 1] && pad == Some(0) {
            return Tensor::from_dispatch(<Dispatch as FastOps>::pointwise(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
            ));
        }
        if cin_per_group == 1
            && conv.groups == cin
            && cout == cin
            && kh % 2 == 1
            && pad == Some((kh - 1) / 2)
        {
            return Tensor::from_dispatch(<Dispatch as FastOps>::depthwise(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
                conv.stride[0],
            ));
        }
    }
    conv.forward(x)
}
