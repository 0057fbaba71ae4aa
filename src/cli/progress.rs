//! A run's live progress: each case's line as it ends, and, on a terminal only, a progress bar
//! under those lines with the count, the elapsed time and the tally so far. In CI (no terminal,
//! or `TERM=dumb`) and when a report takes standard output, the lines alone: plain, one per case,
//! readable in any log.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use misdirect_core::outcome::{CaseResult, Tally};
use misdirect_core::report::terminal;
use misdirect_core::verdict::Verdict;

use super::STDOUT_IS_A_REPORT;

/// The lines and, where there is a terminal to draw on, the bar.
pub(super) struct Progress {
    total: usize,
    bar: Option<ProgressBar>,
    /// The verdicts of the cases finished so far: the count and the tally the bar shows.
    done: Mutex<Tally>,
}

impl Progress {
    /// Progress over `total` cases; the bar only when both standard streams are a terminal
    /// (the lines go to one, the bar to the other) and no report takes standard output.
    pub(super) fn new(total: usize) -> Self {
        let terminal = std::io::stdout().is_terminal()
            && std::io::stderr().is_terminal()
            && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
            && !STDOUT_IS_A_REPORT.load(std::sync::atomic::Ordering::Relaxed);
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(u64::try_from(total).unwrap_or(u64::MAX)),
                ProgressDrawTarget::stderr(),
            );
            // Invariant: the template is a constant that indicatif accepts.
            if let Ok(style) =
                ProgressStyle::with_template("[{bar:30}] {pos}/{len} cases  {elapsed}  {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            total,
            bar,
            done: Mutex::new(Tally::default()),
        }
    }

    /// One case ended: its line, then the bar moved on.
    pub(super) fn finished(&self, result: &CaseResult) {
        let mut done = self
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        done.add(result.verdict);
        let line = terminal::progress_line(result, done.total(), self.total);
        match &self.bar {
            Some(bar) => {
                bar.suspend(|| say!("{line}"));
                bar.set_position(u64::try_from(done.total()).unwrap_or(u64::MAX));
                bar.set_message(counts(&done));
            }
            None => say!("{line}"),
        }
    }
}

/// The verdicts seen so far, most urgent first and only those seen: `2 FAIL 1 ERROR 40 PASS`.
fn counts(tally: &Tally) -> String {
    let mut verdicts = Verdict::ALL;
    verdicts.reverse();
    verdicts
        .into_iter()
        .filter(|verdict| tally.count(*verdict) > 0)
        .map(|verdict| format!("{} {}", tally.count(verdict), verdict.label()))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Drop for Progress {
    /// The bar goes away before the summary is printed.
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
