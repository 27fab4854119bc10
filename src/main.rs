#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    vouch::cli::main()
}
