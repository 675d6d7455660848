//! The `portico` command.

/// mimalloc: Portico allocates many small values (parsed YAML, JSON); glibc's allocator spent a
/// fifth of validation time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    portico::run()
}
