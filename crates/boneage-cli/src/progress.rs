//! Progress on a terminal: indicatif bars (hidden when stderr is not a terminal, so
//! logs stay clean) behind the library's `Progress`.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar on stderr with count, rate and ETA.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, ETA {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// The library's progress reports as bars and lines on stderr.
#[derive(Default)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(b) = self.bar.lock().expect("not poisoned").as_ref() {
            f(b);
        }
    }
}

impl boneage::Progress for Bars {
    fn start(&self, what: &str, len: usize) {
        *self.bar.lock().expect("not poisoned") = Some(progress_bar(len as u64, what));
    }
    fn inc(&self) {
        self.with(|b| b.inc(1));
    }
    fn message(&self, text: &str) {
        self.with(|b| b.set_message(text.to_string()));
    }
    fn note(&self, text: &str) {
        match self.bar.lock().expect("not poisoned").as_ref() {
            Some(b) => b.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
    fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("not poisoned").take() {
            b.finish_and_clear();
        }
    }
}
