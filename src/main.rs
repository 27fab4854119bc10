//! The `vouch` binary: everything it does is the library's command line, [`vouch::cli::main`].

#![forbid(unsafe_code)]

/// mimalloc instead of the C library's allocator: a request allocates and frees many small
/// buffers across threads, which glibc's malloc serves with locks and consolidation passes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vouch::cli::main()
}
