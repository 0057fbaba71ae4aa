//! The `misdirect` command; everything but the exit code lives in the library's `cli` module.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = match misdirect::cli::parse(std::env::args_os()).and_then(misdirect::cli::run) {
        Ok(code) => code,
        Err(failure) if failure.code == 0 => {
            use std::io::Write as _;
            let _ = write!(std::io::stdout().lock(), "{}", failure.message);
            0
        }
        Err(failure) => {
            eprintln!("{}", failure.message.trim_end());
            failure.code
        }
    };
    ExitCode::from(code)
}
