use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = authd::cli::Cli::parse();
    match authd::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Logging is set up by the time a command can fail.
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
