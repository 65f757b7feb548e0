//! Times the `boneage bench train` cases on the flex backend without the PyTorch
//! side: `cargo run --release -p boneage-nn --example train_step [REPS]`.

fn main() {
    let reps = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    for t in boneage_nn::bench::run(reps, None) {
        println!("{:<16} {:>8.3} s  {}", t.case, t.seconds, t.what);
    }
}
