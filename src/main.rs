//! The `llmgate` binary: parse the flags, hand over to the library.

fn main() -> std::process::ExitCode {
    llmgate::cli::main()
}
