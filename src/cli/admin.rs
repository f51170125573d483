//! The operator's administrative commands: `authd account disable|enable|
//! reset-password`, `authd app list|show|delete`, `authd token revoke` and
//! `authd key list|rotate`. They work on the database directly, through the
//! same service methods as the Admin gRPC API (`service::admin`,
//! `service::keys`), so that running replicas hear of every change through
//! the database's notifications.
//!
//! Output is for people by default; `--json` prints one JSON document for
//! scripts. Logs go to standard error, never to the output.
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use serde_json::json;

use super::{read_password, with_service};
use crate::config::DatabaseArgs;
use crate::domain::account::Account;
use crate::domain::app::App;
use crate::domain::error::{AuthError, ErrorKind};
use crate::domain::id::AccountId;
use crate::domain::redirect_uri::RedirectUri;
use crate::service::AuthService;
use crate::service::admin::{AccountRef, AdminCaller, TokenOwner};
use crate::service::jwt::KeyInfo;

/// How the account is named.
#[derive(Args, Clone, Debug)]
#[group(required = true, multiple = false)]
pub struct AccountSelector {
    /// The account's username.
    #[arg(long)]
    pub username: Option<String>,
    /// The account's id.
    #[arg(long)]
    pub id: Option<i64>,
}

/// What to print.
#[derive(Args, Clone, Copy, Debug)]
pub struct Output {
    /// Print one JSON document instead of lines for people.
    #[arg(long)]
    pub json: bool,
}

/// The JWT lifetime the servers run with, for key commands.
#[derive(Args, Clone, Copy, Debug)]
pub struct JwtLifetime {
    /// The JWT access-token lifetime of the running servers (as `authd serve
    /// --jwt-access-token-ttl`): a retired key is listed until its
    /// retirement plus this and a minute, as the servers publish it.
    #[arg(long, env = "AUTHD_JWT_ACCESS_TOKEN_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub jwt_access_token_ttl: Duration,
}

/// `authd account` commands besides `create`.
#[derive(Subcommand, Debug)]
pub enum AccountAdmin {
    /// Disable an account: it can no longer log in, its sessions end and its
    /// tokens stop being active (until it is enabled again).
    Disable {
        #[command(flatten)]
        account: AccountSelector,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Enable a disabled account: it can log in again, and its tokens that
    /// were not revoked meanwhile are active again.
    Enable {
        #[command(flatten)]
        account: AccountSelector,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Set a new password, read from standard input (one line) or, on a
    /// terminal, prompted for; never from an argument. Every session of the
    /// account ends, and its tokens and unredeemed codes are revoked.
    ResetPassword {
        #[command(flatten)]
        account: AccountSelector,
        /// Keep the account's tokens (a routine reset, not a compromise);
        /// its sessions end regardless.
        #[arg(long)]
        keep_tokens: bool,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// `authd app` commands besides `resource-server`.
#[derive(Subcommand, Debug)]
pub enum AppAdmin {
    /// List registered applications, oldest first.
    List {
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Show one application and how much it is in use.
    Show {
        /// The application's client_id (one may begin with '-').
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Delete an application with its grants, tokens, codes and consents:
    /// its tokens stop being active at once, on every running replica, and
    /// its client_id no longer authenticates.
    Delete {
        /// The application's client_id (one may begin with '-').
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Allow an application to be granted admin:* scopes through
    /// client_credentials, acting for itself (or, with --off, forbid it:
    /// the default). Its tokens already issued introspect with or without
    /// them from now on, on every replica.
    AdminScopes {
        /// The application's client_id (one may begin with '-').
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// Forbid instead of allow.
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// Whose tokens.
#[derive(Args, Clone, Debug)]
#[group(required = true, multiple = false)]
pub struct TokenOwnerArgs {
    /// Every token of the account with this username.
    #[arg(long)]
    pub username: Option<String>,
    /// Every token of the account with this id.
    #[arg(long)]
    pub account_id: Option<AccountId>,
    /// Every token of the application with this client_id.
    #[arg(long)]
    pub client_id: Option<String>,
}

/// `authd token`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Revoke every access and refresh token (and unredeemed code) of an
    /// account or of an application. Sessions, consents and the app's
    /// credentials stay.
    Revoke {
        #[command(flatten)]
        owner: TokenOwnerArgs,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// `authd key`.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List the keys that sign JWT access tokens or still verify them.
    List {
        #[command(flatten)]
        lifetime: JwtLifetime,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Retire the signing key and create a new one. Every replica signs
    /// with the new key from now on; the old one stays in the JWKS, and its
    /// tokens stay valid, until they have all expired. No private key is
    /// ever printed.
    Rotate {
        #[command(flatten)]
        lifetime: JwtLifetime,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

impl AccountSelector {
    fn to_ref(&self) -> anyhow::Result<AccountRef> {
        let (id, username) = match (&self.id, &self.username) {
            (Some(id), _) => (id.to_string(), String::new()),
            (None, Some(name)) => (String::new(), name.clone()),
            (None, None) => (String::new(), String::new()),
        };
        AccountRef::from_fields(&id, &username).map_err(|e| anyhow::anyhow!("{}", e.description))
    }

    fn describe(&self) -> String {
        match (&self.id, &self.username) {
            (Some(id), _) => format!("account with id {id}"),
            (None, Some(name)) => format!("account with username {name}"),
            (None, None) => "account".into(),
        }
    }
}

/// Runs `op` as the operator (see `with_service`), naming `what` in its
/// errors.
async fn as_operator<T>(
    database: &DatabaseArgs,
    jwt_lifetime: Option<Duration>,
    what: &str,
    op: impl AsyncFnOnce(&AuthService) -> Result<T, AuthError>,
) -> anyhow::Result<T> {
    with_service(database, jwt_lifetime, op)
        .await?
        .map_err(|e| match e.kind {
            ErrorKind::NotFound => anyhow::anyhow!("no {what}"),
            _ => anyhow::anyhow!("{what}: {}", e.description),
        })
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn emit(output: Output, human: String, json: serde_json::Value) {
    if output.json {
        println!("{json:#}");
    } else {
        println!("{human}");
    }
}

fn account_json(a: &Account) -> serde_json::Value {
    json!({
        "id": a.id.to_string(),
        "username": a.username,
        "email": a.email,
        "admin": a.is_admin,
        "disabled": a.is_disabled(),
        "created_at": time(a.created_at),
    })
}

fn app_json(a: &App) -> serde_json::Value {
    json!({
        "id": a.id.to_string(),
        "client_id": a.client_id,
        "name": a.name,
        "website": a.website,
        "redirect_uris": a.redirect_uris.iter().map(RedirectUri::as_str).collect::<Vec<_>>(),
        "scopes": a.scopes.to_vec_strings(),
        "access_token_format": a.access_token_format.as_str(),
        "resource_server": a.is_resource_server,
        "admin_scopes": a.may_use_admin_scopes,
        "created_at": time(a.created_at),
    })
}

fn key_json(k: &KeyInfo) -> serde_json::Value {
    json!({
        "kid": k.kid,
        "algorithm": k.algorithm.as_str(),
        "created_at": time(k.created_at),
        "retired_at": k.retired_at.map(time),
        "published_until": k.published_until.map(time),
    })
}

fn key_line(k: &KeyInfo) -> String {
    match k.published_until {
        None => format!(
            "{}  {}  signing since {}",
            k.kid,
            k.algorithm,
            time(k.created_at)
        ),
        Some(until) => format!(
            "{}  {}  retired {}, published until {}",
            k.kid,
            k.algorithm,
            k.retired_at.map(time).unwrap_or_default(),
            time(until)
        ),
    }
}

pub async fn run_account(command: AccountAdmin) -> anyhow::Result<()> {
    match command {
        AccountAdmin::Disable {
            account,
            output,
            database,
        } => set_disabled(&account, output, &database, true).await,
        AccountAdmin::Enable {
            account,
            output,
            database,
        } => set_disabled(&account, output, &database, false).await,
        AccountAdmin::ResetPassword {
            account,
            keep_tokens,
            output,
            database,
        } => {
            let target = account.to_ref()?;
            let password = read_password()?;
            let (record, reset) = as_operator(&database, None, &account.describe(), async |s| {
                s.reset_password(AdminCaller::Operator, &target, &password, keep_tokens)
                    .await
            })
            .await?;
            emit(
                output,
                format!(
                    "reset the password of {} (id {}): {} session(s) ended, {} grant(s) revoked{}",
                    record.username,
                    record.id,
                    reset.ended_sessions,
                    reset.revoked.grants,
                    if keep_tokens { " (tokens kept)" } else { "" }
                ),
                json!({
                    "account": account_json(&record),
                    "ended_sessions": reset.ended_sessions,
                    "revoked_grants": reset.revoked.grants,
                    "deleted_codes": reset.revoked.codes,
                }),
            );
            Ok(())
        }
    }
}

async fn set_disabled(
    account: &AccountSelector,
    output: Output,
    database: &DatabaseArgs,
    disabled: bool,
) -> anyhow::Result<()> {
    let target = account.to_ref()?;
    let record = as_operator(database, None, &account.describe(), async |s| {
        s.set_account_disabled(AdminCaller::Operator, &target, disabled)
            .await
    })
    .await?;
    emit(
        output,
        format!(
            "{} {} (id {})",
            if disabled { "disabled" } else { "enabled" },
            record.username,
            record.id
        ),
        account_json(&record),
    );
    Ok(())
}

pub async fn run_app(command: AppAdmin) -> anyhow::Result<()> {
    match command {
        AppAdmin::List { output, database } => {
            let apps = as_operator(&database, None, "applications", async |s| {
                let mut apps = Vec::new();
                let mut after = None;
                loop {
                    let page = s.list_apps(AdminCaller::Operator, after, 0).await?;
                    apps.extend(page.apps);
                    match page.next_after {
                        Some(next) => after = Some(next),
                        None => return Ok(apps),
                    }
                }
            })
            .await?;
            let human = if apps.is_empty() {
                "no applications".to_owned()
            } else {
                apps.iter()
                    .map(|a| {
                        format!(
                            "{}  {}  {}  {}  {}{}",
                            a.id,
                            a.client_id,
                            a.name,
                            a.access_token_format.as_str(),
                            a.scopes.to_vec_strings().join(" "),
                            if a.is_resource_server {
                                "  (resource server)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            emit(
                output,
                human,
                json!({ "apps": apps.iter().map(app_json).collect::<Vec<_>>() }),
            );
            Ok(())
        }
        AppAdmin::Show {
            client_id,
            output,
            database,
        } => {
            let what = format!("application with client_id {client_id}");
            let details = as_operator(&database, None, &what, async |s| {
                s.app_details(AdminCaller::Operator, &client_id).await
            })
            .await?;
            let a = &details.app;
            let u = &details.usage;
            emit(
                output,
                format!(
                    "id                  {}\nclient_id           {}\nname                {}\nwebsite             {}\nredirect_uris       {}\nscopes              {}\ntoken format        {}\nresource server     {}\nadmin scopes        {}\ncreated             {}\nlive grants         {}\nactive tokens       {}\naccounts            {}",
                    a.id,
                    a.client_id,
                    a.name,
                    a.website.as_deref().unwrap_or("-"),
                    a.redirect_uris
                        .iter()
                        .map(RedirectUri::as_str)
                        .collect::<Vec<_>>()
                        .join(" "),
                    a.scopes.to_vec_strings().join(" "),
                    a.access_token_format.as_str(),
                    if a.is_resource_server { "yes" } else { "no" },
                    if a.may_use_admin_scopes {
                        "through client_credentials"
                    } else {
                        "no"
                    },
                    time(a.created_at),
                    u.live_grants,
                    u.active_access_tokens,
                    u.accounts,
                ),
                json!({
                    "app": app_json(a),
                    "live_grants": u.live_grants,
                    "active_access_tokens": u.active_access_tokens,
                    "accounts": u.accounts,
                }),
            );
            Ok(())
        }
        AppAdmin::Delete {
            client_id,
            output,
            database,
        } => {
            let what = format!("application with client_id {client_id}");
            let deleted = as_operator(&database, None, &what, async |s| {
                s.delete_app(AdminCaller::Operator, &client_id).await
            })
            .await?;
            emit(
                output,
                format!(
                    "deleted {} ({}); {} live grant(s) revoked with it",
                    deleted.app.name, deleted.app.client_id, deleted.revoked_grants
                ),
                json!({
                    "app": app_json(&deleted.app),
                    "revoked_grants": deleted.revoked_grants,
                }),
            );
            Ok(())
        }
        AppAdmin::AdminScopes {
            client_id,
            off,
            output,
            database,
        } => {
            let what = format!("application with client_id {client_id}");
            let app = as_operator(&database, None, &what, async |s| {
                s.set_app_admin_scopes(AdminCaller::Operator, &client_id, !off)
                    .await
            })
            .await?;
            emit(
                output,
                format!(
                    "{} ({}) may {}be granted admin scopes through client_credentials",
                    app.name,
                    app.client_id,
                    if app.may_use_admin_scopes { "" } else { "not " }
                ),
                json!({ "app": app_json(&app) }),
            );
            Ok(())
        }
    }
}

pub async fn run_token(command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Revoke {
        owner,
        output,
        database,
    } = command;
    let (target, what) = match (&owner.username, owner.account_id, &owner.client_id) {
        (Some(name), _, _) => (
            TokenOwner::Account(
                AccountRef::from_fields("", name)
                    .map_err(|e| anyhow::anyhow!("{}", e.description))?,
            ),
            format!("account with username {name}"),
        ),
        (None, Some(id), _) => (
            TokenOwner::Account(AccountRef::Id(id)),
            format!("account with id {id}"),
        ),
        (None, None, Some(client_id)) => (
            TokenOwner::App {
                client_id: client_id.clone(),
            },
            format!("application with client_id {client_id}"),
        ),
        (None, None, None) => anyhow::bail!("name an account or an application"),
    };
    let revoked = as_operator(&database, None, &what, async |s| {
        s.revoke_tokens(AdminCaller::Operator, &target).await
    })
    .await?;
    emit(
        output,
        format!(
            "revoked {} grant(s) of the {what} (with their access and refresh tokens); deleted {} unredeemed code(s)",
            revoked.grants, revoked.codes
        ),
        json!({ "revoked_grants": revoked.grants, "deleted_codes": revoked.codes }),
    );
    Ok(())
}

pub async fn run_key(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::List {
            lifetime,
            output,
            database,
        } => {
            let keys = as_operator(
                &database,
                Some(lifetime.jwt_access_token_ttl),
                "signing keys",
                async |s| s.signing_keys(AdminCaller::Operator).await,
            )
            .await?;
            emit(
                output,
                keys.iter().map(key_line).collect::<Vec<_>>().join("\n"),
                json!({ "keys": keys.iter().map(key_json).collect::<Vec<_>>() }),
            );
            Ok(())
        }
        KeyCommand::Rotate {
            lifetime,
            output,
            database,
        } => {
            let rotation = as_operator(
                &database,
                Some(lifetime.jwt_access_token_ttl),
                "signing key rotation",
                async |s| s.rotate_signing_key(AdminCaller::Operator).await,
            )
            .await?;
            let mut human = rotation
                .keys
                .iter()
                .map(|k| format!("new signing key: {}", key_line(k)))
                .collect::<Vec<_>>()
                .join("\n");
            for old in &rotation.retired {
                human.push_str(&format!("\nretired: {}", key_line(old)));
            }
            emit(
                output,
                human,
                json!({
                    "key": rotation.access_token_key().map(key_json),
                    "keys": rotation.keys.iter().map(key_json).collect::<Vec<_>>(),
                    "retired": rotation.retired.iter().map(key_json).collect::<Vec<_>>(),
                }),
            );
            Ok(())
        }
    }
}
