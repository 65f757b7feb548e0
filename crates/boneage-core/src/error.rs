//! The one error type of `boneage-core`. Every variant that concerns a file names it.

use std::path::PathBuf;

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in `boneage-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error (in the message, not chained, so that
        /// `{:#}` prints it once).
        cause: std::io::Error,
    },
    /// The file is not a PNG, JPEG or DICOM image.
    #[error("{}: not an image (not PNG, JPEG or DICOM)", path.display())]
    NotAnImage {
        /// The file.
        path: PathBuf,
    },
    /// The file starts like an image but its data ends early or is corrupt.
    #[error("{}: corrupt or truncated {format} data: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The container format, e.g. "PNG".
        format: &'static str,
        /// What the decoder reported.
        detail: String,
    },
    /// The image is valid but uses a feature we do not handle.
    #[error("{}: unsupported {format} image: {detail}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The container format.
        format: &'static str,
        /// What is not supported, e.g. "photometric interpretation PALETTE COLOR".
        detail: String,
    },
    /// The header announces an image too large to decode safely.
    #[error(
        "{}: image of {width}x{height} pixels refused (more than {limit_mp} megapixels)",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Announced width.
        width: u64,
        /// Announced height.
        height: u64,
        /// The limit in megapixels.
        limit_mp: u64,
    },
    /// A labels file or other table could not be understood.
    #[error("{}: {detail}", path.display())]
    Table {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the line or column.
        detail: String,
    },
    /// Writing an output file failed.
    #[error("{}: cannot write: {detail}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A result could not be encoded (e.g. as DICOM).
    #[error("encoding: {0}")]
    Encode(String),
    /// An argument is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause,
        }
    }
}
