//! `cargo test` entry point for the suites: every scenario against the embedded reference target,
//! every claimed fault detection, the CLI's contract (exit codes, reports, diagnostics), and
//! fuzzing of the loaders.

mod cli;
mod fuzz;

use std::path::Path;
use std::sync::Arc;

use libtest_mimic::Arguments;

fn main() -> std::process::ExitCode {
    let arguments = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenarios = match misdirect_core::scenario::load_paths(&[root.join("suites")]) {
        Ok(scenarios) => scenarios.into_iter().map(Arc::new).collect::<Vec<_>>(),
        Err(errors) => {
            for error in errors {
                eprintln!("{error}");
            }
            return std::process::ExitCode::from(3);
        }
    };
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime starts"),
    );
    let mut trials = misdirect::harness::trials(&scenarios, &runtime)
        .expect("the embedded targets can be set up");
    trials.extend(cli::trials());
    trials.extend(fuzz::trials());
    libtest_mimic::run(&arguments, trials).exit_code()
}
