use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // glibc gives threads that allocate at once arenas of their own (up to
    // eight per core), and what one frees stays in its arena. With 32
    // workers and the runtime's threads answering verifications, a
    // 10,000-account rotation peaked at 92-93 MB with one arena against
    // 98-104 MB with two, for 1-2% more wall time at concurrency 32 (the
    // rotation benchmark's row (b), three runs each: median 3.58 s against
    // 3.52 s). Set before any thread starts.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; nothing has allocated on
    // another thread yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let cli = mdops::cli::Cli::parse();
    match mdops::app::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(failure) => {
            eprint!("{}", failure.message);
            ExitCode::from(failure.code as u8)
        }
    }
}
