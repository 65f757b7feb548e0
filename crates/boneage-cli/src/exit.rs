//! One exit-code table for every command (also in the README):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | commands that take several inputs (files, a folder, a list): some failed or were refused, the others are done |
//! | 2 | bad usage, or an input or run that could not be done at all |
//! | 3 | the one film given was refused (no hand, key points inconsistent, …) |

use std::process::ExitCode;

/// Done.
pub const OK: u8 = 0;
/// Some of several inputs failed or were refused.
pub const SOME_FAILED: u8 = 1;
/// Bad usage, or an input or run that could not be done at all (clap uses 2 for
/// usage errors too).
pub const ERROR: u8 = 2;
/// The one film given was refused.
pub const REFUSED: u8 = 3;

/// 0 when nothing failed, else 1.
pub fn failures(failed: usize) -> ExitCode {
    ExitCode::from(if failed > 0 { SOME_FAILED } else { OK })
}

/// The code of a refusal: 3 for the one film given, 1 among several.
pub fn refused(inputs: usize) -> ExitCode {
    ExitCode::from(if inputs == 1 { REFUSED } else { SOME_FAILED })
}
