//! End-to-end tests of the `boneage` binary, run for real in temporary folders: one
//! binary, one module per group of commands.

mod assess;
mod io;
mod mining;
mod register;
mod serve;
mod train;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn boneage(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boneage"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run boneage")
}

/// Runs `boneage` and asserts it succeeded; its standard output.
pub fn succeed(args: &[&str], dir: &Path) -> String {
    let out = boneage(args, dir);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Runs `boneage` and asserts it failed; its standard error.
pub fn fail(args: &[&str], dir: &Path) -> String {
    let out = boneage(args, dir);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fixed pseudo-random sequence (a 64-bit linear congruential generator) for
/// made-up test data: each call gives the next state.
pub fn lcg(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state
    }
}

pub fn rsna_raw() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/rsna/raw");
    p.is_dir().then_some(p)
}

/// A copy of the shipped bone-age models (`models/age`) in a new folder `dir`, for
/// tests that change a manifest or a calibration.
pub fn copy_shipped_age_models(dir: &Path) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/age");
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(&shipped).unwrap() {
        let e = e.unwrap().path();
        std::fs::copy(&e, dir.join(e.file_name().unwrap())).unwrap();
    }
}
