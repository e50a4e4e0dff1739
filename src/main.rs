//! Thin entry point: run, print the error once, exit with its code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match gradlab::cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
