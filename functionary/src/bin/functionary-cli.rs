//! `functionary-cli`: JSON-RPC client for `functionaryd` (like `elements-cli`) and admin commands.

fn main() -> std::process::ExitCode {
    functionary::cli::main_entry()
}
