use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = mdops::cli::Cli::parse();
    match mdops::app::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(failure) => {
            eprint!("{}", failure.message);
            ExitCode::from(failure.code as u8)
        }
    }
}
