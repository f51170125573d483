use clap::Parser;

// glibc's malloc showed in the profile of the introspection path (its arena
// locks, under many small allocations across threads); mimalloc does not.
// It is built without transparent huge pages (Cargo.toml, `no_thp`): with
// them, memory is resident in 2 MiB pieces, and the cache's million small
// records cost an eighth more than they hold (BENCHMARKS.md, memory).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = authd::cli::Cli::parse();
    match authd::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `run` has logged why.
        Err(_) => std::process::ExitCode::FAILURE,
    }
}
