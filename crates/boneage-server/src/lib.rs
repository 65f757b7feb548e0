//! The HTTP service for bone age assessment (axum). It arrives with its issue; until
//! then this crate is deliberately empty.
#![warn(missing_docs)]
