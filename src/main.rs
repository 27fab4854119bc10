//! The `vouch` binary: everything it does is the library's command line, [`vouch::cli::main`].

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    vouch::cli::main()
}
