//! How long work reports its progress to whoever runs it (a progress bar on a
//! terminal, a log line in a service, nothing in a test).

/// Follows a long piece of work made of counted steps.
pub trait Progress: Sync {
    /// A stage of `len` steps begins, named `what`.
    fn start(&self, _what: &str, _len: usize) {}
    /// One step is done.
    fn inc(&self) {}
    /// The running message changes (e.g. the MAE so far).
    fn message(&self, _text: &str) {}
    /// A line for the person watching, printed above the bar.
    fn note(&self, _text: &str) {}
    /// The stage is over.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}
