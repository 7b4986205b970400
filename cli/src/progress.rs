//! Progress bars for long transfers: shown on a terminal, off with `--quiet` or when
//! stderr is not a TTY.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use vault::transfer::Progress;

/// A byte-counting bar of `total` bytes and the transfer callback that advances it.
pub fn bytes_bar(total: u64, quiet: bool, what: &str) -> (ProgressBar, Progress) {
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b
    };
    bar.set_message(what.to_string());
    let b = bar.clone();
    (bar, Arc::new(move |n| b.inc(n)))
}
