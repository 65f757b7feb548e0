//! Accuracy of this crate's training kernels against float64 definitions, at the layer
//! shapes of the paper-recipe VGG age net on 128×96 inputs (batch 8): the 3×3
//! convolution (output, input gradient, weight gradient) and the fused batch norm + ELU
//! in training mode (output, input, scale and shift gradients). Relative error in the
//! Euclidean norm, random inputs. `cargo run --release -p boneage-nn --example
//! kernel_accuracy` (docs/parity/vgg-A.md).
use boneage_nn::kernels::{Act, BnAct, Conv3x3};

fn rand(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

fn rel(a: &[f32], b: &[f64]) -> f64 {
    let (mut d, mut n) = (0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        d += (*x as f64 - y).powi(2);
        n += y * y;
    }
    (d / n).sqrt()
}

fn main() {
    conv();
    batch_norm_elu();
}

fn conv() {
    let (mut h, mut w, mut cin) = (128usize, 96usize, 1usize);
    for &c in &[16usize, 32, 48, 64, 80, 96] {
        for (ci, co) in [(cin, c), (c, c)] {
            let s = Conv3x3 {
                batch: 8,
                cin: ci,
                cout: co,
                height: h,
                width: w,
            };
            let x = rand(8 * ci * h * w, 1);
            let wt = rand(co * ci * 9, 2);
            let dy = rand(8 * co * h * w, 3);
            let (hh, ww) = (h as isize, w as isize);
            let mut y = vec![0.0f64; 8 * co * h * w];
            let mut dx = vec![0.0f64; 8 * ci * h * w];
            let mut dw = vec![0.0f64; co * ci * 9];
            for b in 0..8 {
                for o in 0..co {
                    for i in 0..hh {
                        for j in 0..ww {
                            let yi = ((b * co + o) * h * w) as isize + i * ww + j;
                            for c2 in 0..ci {
                                for ky in 0..3isize {
                                    for kx in 0..3isize {
                                        let (yy, xx) = (i + ky - 1, j + kx - 1);
                                        if yy < 0 || xx < 0 || yy >= hh || xx >= ww {
                                            continue;
                                        }
                                        let xi = ((b * ci + c2) * h * w) as isize + yy * ww + xx;
                                        let wi = (o * ci + c2) * 9 + (ky * 3 + kx) as usize;
                                        y[yi as usize] += x[xi as usize] as f64 * wt[wi] as f64;
                                        dx[xi as usize] += dy[yi as usize] as f64 * wt[wi] as f64;
                                        dw[wi] += dy[yi as usize] as f64 * x[xi as usize] as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            println!(
                "{ci:>3}->{co:<3} {h:>3}x{w:<3} fwd {:.2e}  dx {:.2e}  dw {:.2e}",
                rel(&s.forward(&x, &wt), &y),
                rel(&s.input_grad(&wt, &dy), &dx),
                rel(&s.weight_grad(&x, &dy), &dw)
            );
        }
        cin = c;
        h /= 2;
        w /= 2;
    }
}

fn batch_norm_elu() {
    let (mut h, mut w) = (128usize, 96usize);
    for &c in &[16usize, 32, 48, 64, 80, 96] {
        let plane = h * w;
        let s = BnAct {
            batch: 8,
            channels: c,
            plane,
            act: Act::Elu,
        };
        // Conv-like outputs: an offset per channel plus noise.
        let x: Vec<f32> = rand(8 * c * plane, 1)
            .iter()
            .enumerate()
            .map(|(i, v)| v * 2.0 + ((i / plane) % c) as f32 * 0.1)
            .collect();
        let gamma: Vec<f32> = rand(c, 2).iter().map(|v| 1.0 + 0.2 * v).collect();
        let beta: Vec<f32> = rand(c, 3).iter().map(|v| 0.1 * v).collect();
        let dy = rand(8 * c * plane, 4);
        let t = s.forward_train(&x, &gamma, &beta, 1e-5);
        let g = s.backward(&x, &t.output, &gamma, &t.mean, &t.var, 1e-5, &dy);
        let n = (8 * plane) as f64;
        let (mut y, mut dx) = (vec![0.0f64; x.len()], vec![0.0f64; x.len()]);
        let (mut dg, mut db) = (vec![0.0f64; c], vec![0.0f64; c]);
        for ch in 0..c {
            let idx: Vec<usize> = (0..8)
                .flat_map(|b| ((b * c + ch) * plane)..((b * c + ch + 1) * plane))
                .collect();
            let m = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / n;
            let v = idx.iter().map(|&i| (x[i] as f64 - m).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (v + 1e-5).sqrt();
            let mut dz = vec![0.0f64; idx.len()];
            for (k, &i) in idx.iter().enumerate() {
                let xh = (x[i] as f64 - m) * inv;
                let z = gamma[ch] as f64 * xh + beta[ch] as f64;
                y[i] = if z > 0.0 { z } else { z.exp_m1() };
                dz[k] = dy[i] as f64 * if z > 0.0 { 1.0 } else { z.exp() };
                db[ch] += dz[k];
                dg[ch] += dz[k] * xh;
            }
            for (k, &i) in idx.iter().enumerate() {
                let xh = (x[i] as f64 - m) * inv;
                dx[i] = gamma[ch] as f64 * inv * (dz[k] - db[ch] / n - xh * dg[ch] / n);
            }
        }
        println!(
            "{c:>3} ch {h:>3}x{w:<3} y {:.2e}  dx {:.2e}  dgamma {:.2e}  dbeta {:.2e}",
            rel(&t.output, &y),
            rel(&g.x, &dx),
            rel(&g.gamma, &dg),
            rel(&g.beta, &db)
        );
        h /= 2;
        w /= 2;
    }
}
