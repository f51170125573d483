//! `authd-bench run ...` drives a running authd; `authd-bench echo` serves
//! the bare tonic echo that `run` measures as its ceiling (as a child
//! process of its own); `authd-bench cache-memory ...` measures the bytes
//! a running authd spends per cached token. See BENCHMARKS.md.
use std::net::SocketAddr;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "authd-bench", version, about = "Load generator for authd")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load-test a running authd against a bare gRPC echo.
    Run(authd_bench::BenchArgs),
    /// Bytes per cached token: seeds N user tokens in PostgreSQL,
    /// introspects each once and reads the RSS of the authd serving them
    /// before and after.
    CacheMemory(authd_bench::cache_memory::CacheMemoryArgs),
    /// The echo server `run` measures as its ceiling.
    Echo {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => authd_bench::run(args).await.map(drop),
        Command::CacheMemory(args) => authd_bench::cache_memory::run(args).await,
        Command::Echo { addr } => authd_bench::serve_echo(addr).await,
    }
}
