//! The `authd` command: `serve` (the default), `migrate`, and the operator
//! commands that work on the database directly, such as creating the first
//! admin account. Every operator command reaches the service the same way,
//! through `with_service`.
use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{DatabaseArgs, ServeArgs, ShimArgs};
use crate::domain::error::{AuthError, ErrorKind};
use crate::service::accounts::AccountRegistration;
use crate::service::admin::AdminCaller;
use crate::service::{AuthService, ServiceConfig};
use crate::startup::{Application, Database, ShutdownSignal};
use crate::telemetry::{self, LogFormat};

mod admin;

#[derive(Parser, Debug)]
#[command(
    name = "authd",
    version,
    about = "OAuth 2.0 authorization service: gRPC core over PostgreSQL",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "AUTHD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Export traces over OTLP (HTTP/protobuf) to this collector, e.g.
    /// http://127.0.0.1:4318 (spans go to its /v1/traces). Off by default.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true, value_parser = telemetry::otel::parse_endpoint)]
    pub otlp_endpoint: Option<String>,

    /// service.name of the exported traces.
    #[arg(
        long,
        env = "OTEL_SERVICE_NAME",
        default_value = "authd",
        global = true
    )]
    pub otel_service_name: String,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// `authd` with no command serves, with these settings.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the gRPC API and the HTTP shim (the default command).
    Serve(Box<ServeArgs>),
    /// Serve the HTTP shim alone, in front of a remote core.
    Shim(Box<ShimArgs>),
    /// Apply database migrations and exit. Running it twice is harmless.
    Migrate(DatabaseArgs),
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage applications.
    #[command(subcommand)]
    App(AppCommand),
    /// Revoke tokens in bulk.
    #[command(subcommand)]
    Token(admin::TokenCommand),
    /// Manage the keys that sign JWT access tokens.
    #[command(subcommand)]
    Key(admin::KeyCommand),
    /// The door's policy: the scopes each backend route needs.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Ask a running authd whether it is serving (grpc.health.v1); exits 0
    /// when it is. For container health checks.
    Healthcheck {
        /// The gRPC address to check: HOST:PORT, or https://HOST:PORT for
        /// a TLS port whose certificate the system's roots trust.
        #[arg(long, env = "AUTHD_GRPC_ADDR", default_value = "127.0.0.1:50051")]
        addr: String,
        #[command(flatten)]
        tls: crate::tls::HealthcheckTlsArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file and print the table it gives (with no file,
    /// the built-in Mastodon table). Exits 1, naming the route, when the
    /// file is not valid.
    Check {
        /// The policy file (TOML).
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Create an account. The password is read from standard input (one
    /// line) or, on a terminal, prompted for; never from an argument.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Allow the account to use admin scopes.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    #[command(flatten)]
    Admin(admin::AccountAdmin),
}

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Let an application introspect every token, not only its own (or,
    /// with --off, stop it).
    ResourceServer {
        /// The application's client_id (one may begin with '-').
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    #[command(flatten)]
    Admin(admin::AppAdmin),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let otel = cli
        .otlp_endpoint
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|endpoint| telemetry::otel::OtelConfig {
            endpoint: endpoint.to_owned(),
            service_name: cli.otel_service_name.clone(),
        });
    let telemetry = telemetry::init(cli.log_format, otel.as_ref());
    let result = run_command(cli).await;
    // Said while the log writer still runs: its queue is written out at
    // shutdown, and nothing logged after that reaches stderr.
    if let Err(e) = &result {
        tracing::error!("{e:#}");
    }
    // Spans still buffered are exported, and queued lines written, before
    // exiting.
    telemetry.shutdown().await;
    result
}

async fn run_command(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(*args).await,
        Some(Command::Shim(args)) => {
            crate::startup::run_shim(&args, ShutdownSignal::install()?).await
        }
        Some(Command::Migrate(args)) => {
            let db = open(&args).await?;
            println!(
                "database schema is at version {}",
                crate::store::migrate::latest_version()
            );
            db.close().await
        }
        Some(Command::Account(AccountCommand::Create {
            username,
            email,
            admin,
            database,
        })) => {
            let password = read_password()?;
            let registration = AccountRegistration {
                username,
                email,
                password,
                admin,
            };
            let account = with_service(&database, None, async |service| {
                service.create_account_unchecked(&registration).await
            })
            .await?
            .map_err(|e| anyhow::anyhow!("{}", e.description))?;
            println!(
                "created account {} (id {}){}",
                account.username,
                account.id,
                if account.is_admin { ", admin" } else { "" }
            );
            Ok(())
        }
        Some(Command::Account(AccountCommand::Admin(command))) => admin::run_account(command).await,
        Some(Command::App(AppCommand::Admin(command))) => admin::run_app(command).await,
        Some(Command::Token(command)) => admin::run_token(command).await,
        Some(Command::Key(command)) => admin::run_key(command).await,
        Some(Command::Healthcheck { addr, tls }) => healthcheck(&addr, &tls).await,
        Some(Command::Policy(PolicyCommand::Check { file })) => {
            let policy = match &file {
                Some(path) => crate::config::load_policy(path)?,
                None => crate::domain::policy::Policy::mastodon(),
            };
            print!("{}", policy_table(&policy));
            Ok(())
        }
        Some(Command::App(AppCommand::ResourceServer {
            client_id,
            off,
            database,
        })) => {
            let result = with_service(&database, None, async |service| {
                service
                    .set_resource_server(AdminCaller::Operator, &client_id, !off)
                    .await
            })
            .await?;
            let app = match result {
                Ok(app) => app,
                Err(e) if e.kind == ErrorKind::NotFound => {
                    anyhow::bail!("no application has client_id {client_id}")
                }
                Err(e) => anyhow::bail!("{}", e.description),
            };
            println!(
                "{} ({}) is {}a resource server",
                app.name,
                app.client_id,
                if app.is_resource_server { "" } else { "not " }
            );
            Ok(())
        }
    }
}

/// The policy as `authd policy check` prints it: one route per line,
/// methods, path, token requirement and scopes, then what becomes of the
/// requests no route names.
fn policy_table(policy: &crate::domain::policy::Policy) -> String {
    use std::fmt::Write;
    let routes = policy.routes();
    let mut out = String::new();
    for route in &routes {
        let methods: Vec<&str> = route.methods.iter().map(|m| m.as_str()).collect();
        let scopes: Vec<&str> = route.scopes.iter().map(|s| s.as_str()).collect();
        let _ = writeln!(
            out,
            "{:<13} {:<56} token={:<8} {}",
            methods.join(","),
            route.path,
            route.token.as_str(),
            if scopes.is_empty() {
                "-".to_owned()
            } else {
                scopes.join(" ")
            }
        );
    }
    let _ = writeln!(
        out,
        "{} routes; a request no route names is {}",
        routes.len(),
        match policy.unmatched() {
            crate::domain::policy::Unmatched::Deny => "refused (403)",
            crate::domain::policy::Unmatched::Authenticated => "passed with any active token",
        }
    );
    out
}

pub async fn healthcheck(addr: &str, tls: &crate::tls::HealthcheckTlsArgs) -> anyhow::Result<()> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let (https, addr) = match addr.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, addr.strip_prefix("http://").unwrap_or(addr)),
    };
    // A wildcard listen address is not something to connect to.
    let addr = addr
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let tls = tls.load(https)?;
    let check = async {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))?;
        if let Some(tls) = &tls {
            endpoint = endpoint.tls_config(tls.client_config())?;
        }
        let channel = endpoint.connect().await?;
        let mut client = HealthClient::new(channel);
        let status = client
            .check(HealthCheckRequest::default())
            .await?
            .into_inner()
            .status;
        anyhow::Ok(status)
    };
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), check)
        .await
        .context("health check timed out")??;
    anyhow::ensure!(
        status == ServingStatus::Serving as i32,
        "authd at {addr} is not serving (PostgreSQL unreachable?)"
    );
    println!("SERVING");
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let signal = ShutdownSignal::install()?;
    let app = Application::build(args.config()?).await?;
    app.run_until(signal).await
}

async fn open(args: &DatabaseArgs) -> anyhow::Result<Database> {
    Database::open(&args.database_config()?, 2, args.db_timeout).await
}

/// The one way a command reaches the service: opens the database (a
/// private PostgreSQL, or the one a running `authd serve` has started on
/// the same data directory), makes sure a signing key exists as `serve`
/// does at start-up, builds the service for the operator, runs `op`, and
/// closes the database again, whatever `op` answered. `jwt_lifetime` is the
/// running servers' JWT lifetime, for the key commands.
async fn with_service<T>(
    database: &DatabaseArgs,
    jwt_lifetime: Option<Duration>,
    op: impl AsyncFnOnce(&AuthService) -> Result<T, AuthError>,
) -> anyhow::Result<Result<T, AuthError>> {
    let db = open(database).await?;
    let mut config = ServiceConfig::new("");
    config.key_encryption_key = database.key_encryption_key()?;
    if let Some(ttl) = jwt_lifetime {
        config.lifetimes.jwt_access_token = ttl;
    }
    let result = match operator_service(&db, config).await {
        Ok(service) => op(&service).await,
        Err(e) => Err(e),
    };
    db.close().await?;
    Ok(result)
}

async fn operator_service(db: &Database, config: ServiceConfig) -> Result<AuthService, AuthError> {
    AuthService::ensure_signing_key(&db.store, &config.key_encryption_key).await?;
    AuthService::new(db.store.clone(), config).await
}

/// One line from standard input, or a prompt (twice) on a terminal.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password (again): ")?;
        anyhow::ensure!(first == again, "the passwords do not match");
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
