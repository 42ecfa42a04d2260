//! The `bulkhead` binary: parses the command line and hands over to `bulkhead-cli`.

fn main() -> std::process::ExitCode {
    bulkhead_cli::main()
}
