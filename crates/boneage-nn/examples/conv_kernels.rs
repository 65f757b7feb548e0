//! Times the 3×3 convolution of each layer of the cpu bone-age net (batch 8, region A)
//! in burn's flex backend and in `boneage_nn::kernels`: forward, input gradient,
//! weight gradient. `cargo run --release -p boneage-nn --example conv_kernels [REPS]`

use boneage_nn::bench::timed;
use boneage_nn::kernels::{Act, BnAct, Conv3x3};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::tensor::TensorData;

fn tensor(v: &[f32], shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v.to_vec(), shape))
}

fn main() {
    let reps = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let widths = [16, 32, 48, 64, 80, 96];
    let (mut h, mut w, mut cin) = (256, 192, 1);
    let mut layers = Vec::new();
    for &c in &widths {
        layers.push(Conv3x3 {
            batch: 8,
            cin,
            cout: c,
            height: h,
            width: w,
        });
        layers.push(Conv3x3 {
            batch: 8,
            cin: c,
            cout: c,
            height: h,
            width: w,
        });
        cin = c;
        h /= 2;
        w /= 2;
    }
    let opt = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let mut tot = [0.0f64; 6];
    println!("layer              flex fwd  ours fwd | flex dx  ours dx | flex dw  ours dw  (ms)");
    for &s in &layers {
        let x: Vec<f32> = (0..s.batch * s.cin * s.height * s.width)
            .map(|i| (i % 17) as f32 / 17.0 - 0.5)
            .collect();
        let wt: Vec<f32> = (0..s.cout * s.cin * 9)
            .map(|i| (i % 13) as f32 / 13.0 - 0.5)
            .collect();
        let dy: Vec<f32> = (0..s.batch * s.cout * s.height * s.width)
            .map(|i| (i % 7) as f32 / 7.0 - 0.5)
            .collect();
        let xs = [s.batch, s.cin, s.height, s.width];
        let ws = [s.cout, s.cin, 3, 3];
        let ys = [s.batch, s.cout, s.height, s.width];
        let t = [
            timed(1, reps, || {
                Flex::conv2d(tensor(&x, xs), tensor(&wt, ws), None, opt());
            }),
            timed(1, reps, || {
                s.forward(&x, &wt);
            }),
            timed(1, reps, || {
                Flex::conv2d_x_backward(tensor(&x, xs), tensor(&wt, ws), tensor(&dy, ys), opt());
            }),
            timed(1, reps, || {
                s.input_grad(&wt, &dy);
            }),
            timed(1, reps, || {
                Flex::conv2d_weight_backward(
                    tensor(&x, xs),
                    tensor(&wt, ws),
                    tensor(&dy, ys),
                    opt(),
                );
            }),
            timed(1, reps, || {
                s.weight_grad(&x, &dy);
            }),
        ];
        // The same numbers, so that a speed-up is not a wrong answer.
        let flex = Flex::conv2d(tensor(&x, xs), tensor(&wt, ws), None, opt())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let ours = s.forward(&x, &wt);
        let err = flex
            .iter()
            .zip(&ours)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "forward differs by {err}");
        let flex =
            Flex::conv2d_weight_backward(tensor(&x, xs), tensor(&wt, ws), tensor(&dy, ys), opt())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
        let ours = s.weight_grad(&x, &dy);
        let err = flex
            .iter()
            .zip(&ours)
            .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "weight gradient differs by {err}");
        for (a, b) in tot.iter_mut().zip(t) {
            *a += b;
        }
        println!(
            "{:>3}->{:<3} {:>3}x{:<3}  {:8.1} {:8.1} | {:7.1} {:7.1} | {:7.1} {:7.1}",
            s.cin,
            s.cout,
            s.height,
            s.width,
            t[0] * 1e3,
            t[1] * 1e3,
            t[2] * 1e3,
            t[3] * 1e3,
            t[4] * 1e3,
            t[5] * 1e3
        );
    }
    let mut bn = [0.0f64; 2];
    for s in layers.iter().skip(1).step_by(2) {
        let b = BnAct {
            batch: s.batch,
            channels: s.cout,
            plane: s.height * s.width,
            act: Act::Elu,
        };
        let n = b.batch * b.channels * b.plane;
        let x: Vec<f32> = (0..n).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
        let (g, be) = (vec![1.0f32; b.channels], vec![0.1f32; b.channels]);
        let t = b.forward_train(&x, &g, &be, 1e-5);
        bn[0] += 2.0
            * timed(1, reps, || {
                b.forward_train(&x, &g, &be, 1e-5);
            });
        bn[1] += 2.0
            * timed(1, reps, || {
                b.backward(&x, &t.output, &g, &t.mean, &t.var, 1e-5, &x);
            });
    }
    println!(
        "batch norm + ELU, all 12 layers: forward {:.1} ms, backward {:.1} ms",
        bn[0] * 1e3,
        bn[1] * 1e3
    );
    println!(
        "total              {:8.1} {:8.1} | {:7.1} {:7.1} | {:7.1} {:7.1}",
        tot[0] * 1e3,
        tot[1] * 1e3,
        tot[2] * 1e3,
        tot[3] * 1e3,
        tot[4] * 1e3,
        tot[5] * 1e3
    );
}
