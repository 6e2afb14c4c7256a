//! `pingpost-loadtest`, the bundled load generator. It is not part of this build yet: it needs
//! the daemon it loads. It says so and exits with a non-zero status instead of pretending.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "pingpost-loadtest: the load generator is not part of this build yet; \
         it arrives after the daemon it measures"
    );
    ExitCode::from(2)
}
