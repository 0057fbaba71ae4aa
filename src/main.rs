//! The `misdirect` command; everything but the exit code lives in the library's `cli` module.

use std::process::ExitCode;

use misdirect_core::outcome::Exit;

fn main() -> ExitCode {
    let exit = match misdirect::cli::parse(std::env::args_os()).and_then(misdirect::cli::run) {
        Ok(exit) => exit,
        // Help and version are "failures" that print to stdout and exit cleanly.
        Err(failure) if failure.exit == Exit::Clean => {
            use std::io::Write as _;
            let _ = write!(std::io::stdout().lock(), "{}", failure.message);
            Exit::Clean
        }
        Err(failure) => {
            eprintln!("{}", failure.message.trim_end());
            failure.exit
        }
    };
    ExitCode::from(exit.code())
}
