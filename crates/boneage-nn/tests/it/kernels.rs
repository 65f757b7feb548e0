//! This crate's kernels against burn's own operations.

use boneage_nn::burn::prelude::*;

use boneage_nn::blocks::elu;

use crate::device;

/// The largest absolute difference of two equally long vectors.
fn max_diff(a: Vec<f32>, b: Vec<f32>) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
}

/// The 3×3 convolution of `fastops` (this crate's kernels on flex) gives burn's
/// `conv2d` values and gradients, with and without autodiff, at batch sizes above and
/// below the thread count (the kernels split the work differently).
#[test]
fn fast_conv3x3_matches_burn_conv2d() {
    use boneage_nn::burn::tensor::Distribution;
    use boneage_nn::burn::tensor::module::conv2d;
    use boneage_nn::burn::tensor::ops::ConvOptions;
    use boneage_nn::fastops::{conv3x3, is_flex};

    let _rng = crate::rng_lock();
    let d = device().autodiff();
    d.seed(7);
    assert!(is_flex(&d) && is_flex(&device()));
    let opts = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let max_diff = |a: Tensor<4>, b: Tensor<4>| -> f32 {
        let (a, b) = (
            a.into_data().try_to_vec::<f32>().unwrap(),
            b.into_data().try_to_vec::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    };
    for (batch, cin, cout, h, w) in [(1, 3, 4, 9, 7), (5, 2, 6, 4, 11), (2, 1, 3, 1, 1)] {
        let x = Tensor::<4>::random([batch, cin, h, w], Distribution::Default, &d).require_grad();
        let wt = Tensor::<4>::random([cout, cin, 3, 3], Distribution::Default, &d).require_grad();
        let r = Tensor::<4>::random([batch, cout, h, w], Distribution::Default, &d);
        let ours = conv3x3(x.clone(), wt.clone());
        let theirs = conv2d(x.clone(), wt.clone(), None, opts());
        assert!(max_diff(ours.clone(), theirs.clone()) < 1e-5);
        let g1 = (ours * r.clone()).sum().backward();
        let g2 = (theirs * r).sum().backward();
        let grad = |t: &Tensor<4>, g| Tensor::<4>::from_inner(t.grad(g).unwrap());
        assert!(
            max_diff(grad(&x, &g1), grad(&x, &g2)) < 1e-4,
            "input gradient"
        );
        assert!(
            max_diff(grad(&wt, &g1), grad(&wt, &g2)) < 1e-4,
            "weight gradient"
        );
        // Without autodiff.
        let plain = |t: &Tensor<4>| Tensor::<4>::from_inner(t.clone().inner());
        assert!(
            max_diff(
                conv3x3(plain(&x), plain(&wt)),
                conv2d(plain(&x), plain(&wt), None, opts())
            ) < 1e-5
        );
    }
}

/// Batch norm + activation (ELU, ReLU6, none) fused on flex equals burn's
/// `BatchNorm` followed by the activation: output, gradients of input, scale and
/// shift, the running statistics it leaves, and the inference path with those
/// statistics.
#[test]
fn fused_batch_norm_activation_matches_burn() {
    use boneage_nn::burn::module::{Module, Param};
    use boneage_nn::burn::nn::BatchNormConfig;
    use boneage_nn::burn::tensor::Distribution;
    use boneage_nn::fastops::batch_norm_act;
    use boneage_nn::kernels::Act;

    let _rng = crate::rng_lock();
    let d = device().autodiff();
    d.seed(9);
    let vec4 = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    let vec1 = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    let cases = [
        (Act::Elu, 4, 3, 5, 6),
        (Act::Elu, 1, 2, 3, 1),
        (Act::Relu6, 4, 3, 5, 6),
        (Act::Identity, 2, 3, 4, 3),
    ];
    for (act, batch, c, h, w) in cases {
        let reference = |t: Tensor<4>| match act {
            Act::Elu => elu(t),
            Act::Relu6 => t.clamp(0.0, 6.0),
            Act::Identity => t,
        };
        let mut norm = BatchNormConfig::new(c).with_momentum(0.3).init(&d);
        // A scale and shift other than 1 and 0, so that their roles are tested.
        norm.gamma = Param::from_tensor(Tensor::random([c], Distribution::Uniform(0.5, 2.0), &d));
        norm.beta = Param::from_tensor(Tensor::random([c], Distribution::Uniform(-1.0, 1.0), &d));
        let ours_norm = norm.clone();
        // Spread so that ReLU6 is cut at both ends.
        let x = (Tensor::<4>::random([batch, c, h, w], Distribution::Default, &d) * 12.0 - 4.0)
            .require_grad();
        let r = Tensor::<4>::random([batch, c, h, w], Distribution::Default, &d);
        let ours = batch_norm_act(&ours_norm, x.clone(), act);
        let theirs = reference(norm.forward(x.clone()));
        assert!(max_diff(vec4(ours.clone()), vec4(theirs.clone())) < 1e-5);
        let g1 = (ours * r.clone()).sum().backward();
        let g2 = (theirs * r).sum().backward();
        let gx = |g| Tensor::<4>::from_inner(x.grad(g).unwrap());
        assert!(
            max_diff(vec4(gx(&g1)), vec4(gx(&g2))) < 1e-4,
            "input gradient"
        );
        let g1p = |t: &Tensor<1>, g| Tensor::<1>::from_inner(t.grad(g).unwrap());
        for (a, b) in [
            (&ours_norm.gamma, &norm.gamma),
            (&ours_norm.beta, &norm.beta),
        ] {
            assert!(max_diff(vec1(g1p(&a.val(), &g1)), vec1(g1p(&b.val(), &g2))) < 1e-4);
        }
        assert!(
            max_diff(
                vec1(ours_norm.running_mean.value()),
                vec1(norm.running_mean.value())
            ) < 1e-6
        );
        assert!(
            max_diff(
                vec1(ours_norm.running_var.value()),
                vec1(norm.running_var.value())
            ) < 1e-6
        );
        // Inference (no autodiff): the running statistics.
        let (plain_ours, plain_theirs) = (ours_norm.valid(), norm.valid());
        let xi = Tensor::<4>::from_inner(x.clone().inner());
        let a = batch_norm_act(&plain_ours, xi.clone(), act);
        let b = reference(plain_theirs.forward(xi));
        assert!(max_diff(vec4(a), vec4(b)) < 1e-5);
    }
}

/// The depthwise (3×3 and 5×5, stride 1 and 2) and pointwise convolutions that
/// `fastops::conv2d` runs on this crate's kernels give burn's `Conv2d` values and
/// gradients; a convolution they do not cover (a bias) falls back to burn's.
#[test]
fn fast_depthwise_and_pointwise_match_burn_conv2d() {
    use boneage_nn::burn::nn::PaddingConfig2d;
    use boneage_nn::burn::nn::conv::Conv2dConfig;
    use boneage_nn::burn::tensor::Distribution;
    use boneage_nn::fastops::conv2d;

    let _rng = crate::rng_lock();
    let d = device().autodiff();
    d.seed(11);
    let vec4 = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    // (batch, cin, cout, h, w, kernel, stride, groups, bias)
    let cases = [
        (3, 4, 4, 9, 8, 3, 1, 4, false),
        (2, 5, 5, 10, 7, 5, 2, 5, false),
        (1, 3, 3, 6, 6, 3, 2, 3, false),
        (3, 4, 6, 5, 7, 1, 1, 1, false),
        (1, 6, 2, 3, 4, 1, 1, 1, false),
        (2, 3, 3, 5, 5, 3, 1, 3, true),
    ];
    for (batch, cin, cout, h, w, k, s, groups, bias) in cases {
        let p = (k - 1) / 2;
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_groups(groups)
            .with_bias(bias)
            .init(&d);
        let x = Tensor::<4>::random([batch, cin, h, w], Distribution::Default, &d).require_grad();
        let ours = conv2d(&conv, x.clone());
        let theirs = conv.forward(x.clone());
        assert_eq!(ours.dims(), theirs.dims());
        assert!(max_diff(vec4(ours.clone()), vec4(theirs.clone())) < 1e-5);
        let r = Tensor::<4>::random(ours.dims(), Distribution::Default, &d);
        let g1 = (ours * r.clone()).sum().backward();
        let g2 = (theirs * r).sum().backward();
        let grad = |t: &Tensor<4>, g| vec4(Tensor::<4>::from_inner(t.grad(g).unwrap()));
        let what = format!("k{k} s{s} groups {groups}");
        assert!(
            max_diff(grad(&x, &g1), grad(&x, &g2)) < 1e-4,
            "input gradient, {what}"
        );
        let wt = conv.weight.val();
        assert!(
            max_diff(grad(&wt, &g1), grad(&wt, &g2)) < 1e-4,
            "weight gradient, {what}"
        );
    }
}

/// The 2×2 max pool of `fastops` gives burn's `MaxPool2d` output and input gradient.
#[test]
fn fast_max_pool_matches_burn() {
    use boneage_nn::burn::nn::pool::MaxPool2dConfig;
    use boneage_nn::burn::tensor::Distribution;
    use boneage_nn::fastops::max_pool2;

    let _rng = crate::rng_lock();
    let d = device().autodiff();
    d.seed(3);
    let pool = MaxPool2dConfig::new([2, 2]).init();
    let v = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    for shape in [[2, 3, 6, 8], [1, 2, 5, 7]] {
        let x = Tensor::<4>::random(shape, Distribution::Default, &d).require_grad();
        let ours = max_pool2(&pool, x.clone());
        let theirs = pool.forward(x.clone());
        assert_eq!(ours.dims(), theirs.dims());
        assert_eq!(v(ours.clone()), v(theirs.clone()));
        let r = Tensor::<4>::random(ours.dims(), Distribution::Default, &d);
        let g1 = (ours * r.clone()).sum().backward();
        let g2 = (theirs * r).sum().backward();
        let gx = |g| Tensor::<4>::from_inner(x.grad(g).unwrap());
        assert_eq!(v(gx(&g1)), v(gx(&g2)));
    }
}
