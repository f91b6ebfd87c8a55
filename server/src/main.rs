//! The `auuction` binary: parse the command line, build, run.

// glibc's malloc was a tenth of the server's time under a bid storm (perf): many small,
// short-lived allocations across threads, which mimalloc handles with thread-local heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    auuction::cli::main()
}
