//! The `portico` command.

fn main() -> std::process::ExitCode {
    portico::run()
}
