//! The `auuction` binary: parse the command line, build, run.

fn main() -> std::process::ExitCode {
    auuction::cli::main()
}
