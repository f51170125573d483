//! Administration: accounts (disable, enable, reset a password), apps
//! (list, show, delete) and tokens (revoke by account or by app). The
//! operator's `authd` command and the gRPC API call these same methods; the
//! only difference is the caller, checked once in `admit`.
//!
//! Every write that can turn an active token inactive drops the affected
//! cache entries here at once; the database triggers (migrations/0002)
//! announce it to every other replica.
use std::fmt;

use super::AuthService;
use super::cache::Invalidation;
use crate::domain::account::Account;
use crate::domain::account::{Password, Username};
use crate::domain::app::App;
use crate::domain::app::AppUsage;
use crate::domain::error::AuthError;
use crate::domain::grant::{PasswordReset, RevokedTokens};
use crate::domain::id::{AccountId, AppId};
use crate::domain::password;
use crate::domain::scope::Scope;

/// Who asks for an administrative operation.
#[derive(Clone, Copy, Debug)]
pub enum AdminCaller<'a> {
    /// The operator at the `authd` command line: whoever can reach the
    /// database may do anything already.
    Operator,
    /// An API caller: a user token of an admin account, with admin:read
    /// for reading and admin:write for changing.
    Bearer(&'a str),
}

/// Who did it, for the log.
#[derive(Clone, Copy, Debug)]
pub enum Actor {
    Operator,
    Admin(AccountId),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Operator => f.write_str("operator"),
            Actor::Admin(id) => write!(f, "admin account {id}"),
        }
    }
}

/// An account, named by id or by username.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountRef {
    Id(AccountId),
    Username(Username),
}

impl AccountRef {
    /// Exactly one of `id` and `username` must be given. An id that is not
    /// a number names no account.
    pub fn from_fields(id: &str, username: &str) -> Result<AccountRef, AuthError> {
        match (id.trim(), username.trim()) {
            ("", "") => Err(AuthError::invalid_request(
                "Name the account by id or by username.",
            )),
            (_, "") => id
                .trim()
                .parse()
                .map(AccountRef::Id)
                .map_err(|_| AuthError::not_found("Record not found")),
            ("", name) => Ok(AccountRef::Username(Username::parse(name).map_err(
                |_| AuthError::invalid_request("That is not a valid username."),
            )?)),
            _ => Err(AuthError::invalid_request(
                "Name the account by id or by username, not both.",
            )),
        }
    }
}

/// Whose tokens to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenOwner {
    Account(AccountRef),
    App { client_id: String },
}

/// An app and how much it is in use.
#[derive(Clone, Debug)]
pub struct AppDetails {
    pub app: App,
    pub usage: AppUsage,
}

/// A page of apps, oldest first.
#[derive(Clone, Debug)]
pub struct AppPage {
    pub apps: Vec<App>,
    /// The id to continue after, when there may be more.
    pub next_after: Option<AppId>,
}

/// Most apps in one page.
pub const MAX_PAGE: u32 = 1000;
/// Apps in a page when the caller names no size.
pub const DEFAULT_PAGE: u32 = 100;

/// A deleted app, and the grants that died with it.
#[derive(Clone, Debug)]
pub struct DeletedApp {
    pub app: App,
    pub revoked_grants: u64,
}

impl AuthService {
    /// Checks that `caller` may perform an operation needing `scope`.
    pub(crate) async fn admit(
        &self,
        caller: AdminCaller<'_>,
        scope: Scope,
    ) -> Result<Actor, AuthError> {
        match caller {
            AdminCaller::Operator => Ok(Actor::Operator),
            AdminCaller::Bearer(token) => {
                Ok(Actor::Admin(self.authorize_admin(token, scope).await?.id))
            }
        }
    }

    async fn resolve_account(&self, account: &AccountRef) -> Result<Account, AuthError> {
        let found = match account {
            AccountRef::Id(id) => self.store().account_by_id(*id).await?,
            AccountRef::Username(name) => self.store().account_by_username(name.as_str()).await?,
        };
        found.ok_or_else(|| AuthError::not_found("Record not found"))
    }

    async fn resolve_app(&self, client_id: &str) -> Result<App, AuthError> {
        self.store()
            .app_by_client_id(client_id)
            .await?
            .ok_or_else(|| AuthError::not_found("No application has that client_id"))
    }

    /// Disables an account (its sessions end, its tokens stop being active,
    /// it cannot log in) or enables it again. Enabling gives back the
    /// tokens it had that were not revoked meanwhile.
    pub async fn set_account_disabled(
        &self,
        caller: AdminCaller<'_>,
        account: &AccountRef,
        disabled: bool,
    ) -> Result<Account, AuthError> {
        let actor = self.admit(caller, Scope::AdminWrite).await?;
        let id = self.resolve_account(account).await?.id;
        let store = self.store();
        let changed = if disabled {
            store.disable_account(id).await?
        } else {
            store.enable_account(id).await?
        };
        let account = changed.ok_or_else(|| AuthError::not_found("Record not found"))?;
        self.cache().invalidate(&Invalidation::Account(account.id));
        tracing::info!(by = %actor, account = %account.id, disabled, "changed account state");
        Ok(account)
    }

    /// Sets a new password. Every session of the account ends (a session
    /// is proof of the old password). Unless `keep_tokens`, its tokens and
    /// unredeemed codes are revoked too: a reset usually follows a
    /// compromise, and a thief's tokens must not outlive it.
    pub async fn reset_password(
        &self,
        caller: AdminCaller<'_>,
        account: &AccountRef,
        new_password: &str,
        keep_tokens: bool,
    ) -> Result<(Account, PasswordReset), AuthError> {
        let actor = self.admit(caller, Scope::AdminWrite).await?;
        let password = Password::parse(new_password)?;
        let id = self.resolve_account(account).await?.id;
        let phc = self
            .with_password_hashing(move || password::hash(password.expose()))
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                AuthError::internal()
            })?;
        let (account, reset) = self
            .store()
            .reset_password(id, &phc, !keep_tokens)
            .await?
            .ok_or_else(|| AuthError::not_found("Record not found"))?;
        self.cache().invalidate(&Invalidation::Account(account.id));
        tracing::info!(
            by = %actor,
            account = %account.id,
            sessions = reset.ended_sessions,
            grants = reset.revoked.grants,
            "reset password"
        );
        Ok((account, reset))
    }

    /// Apps in id order, `limit` at most (1 to 1000), after `after`.
    pub async fn list_apps(
        &self,
        caller: AdminCaller<'_>,
        after: Option<AppId>,
        limit: u32,
    ) -> Result<AppPage, AuthError> {
        self.admit(caller, Scope::AdminRead).await?;
        let limit = match limit {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => {
                return Err(AuthError::invalid_request(format!(
                    "At most {MAX_PAGE} apps per page."
                )));
            }
            n => n,
        };
        let apps = self.store().list_apps(after, i64::from(limit)).await?;
        // A full page may have a successor; a short one is the last.
        let next_after = if apps.len() == limit as usize {
            apps.last().map(|a| a.id)
        } else {
            None
        };
        Ok(AppPage { apps, next_after })
    }

    pub async fn app_details(
        &self,
        caller: AdminCaller<'_>,
        client_id: &str,
    ) -> Result<AppDetails, AuthError> {
        self.admit(caller, Scope::AdminRead).await?;
        let app = self.resolve_app(client_id).await?;
        let usage = self.store().app_usage(app.id, self.now()).await?;
        Ok(AppDetails { app, usage })
    }

    /// Deletes an app with its grants, tokens, codes and consents. Its
    /// tokens stop being active at once here, and on other replicas when
    /// the deletion's notifications reach them; its client_id no longer
    /// authenticates.
    pub async fn delete_app(
        &self,
        caller: AdminCaller<'_>,
        client_id: &str,
    ) -> Result<DeletedApp, AuthError> {
        let actor = self.admit(caller, Scope::AdminWrite).await?;
        let (app, revoked_grants) = self
            .store()
            .delete_app(client_id)
            .await?
            .ok_or_else(|| AuthError::not_found("No application has that client_id"))?;
        self.cache().invalidate(&Invalidation::App(app.id));
        tracing::info!(by = %actor, app_id = %app.id, client_id = %app.client_id, revoked_grants, "deleted app");
        Ok(DeletedApp {
            app,
            revoked_grants,
        })
    }

    /// Revokes every grant (so every access and refresh token) of an
    /// account or of an app, and deletes their unredeemed codes. Sessions,
    /// consents and the app's credentials stay: to lock a person out,
    /// disable the account or reset its password; to stop a client, delete
    /// the app.
    /// Allows or forbids `client_credentials` to grant the app `admin:*`
    /// scopes. Its cached tokens are dropped, here and (by the database's
    /// notification) on every replica, so that its tokens already issued
    /// introspect with or without them from now on.
    pub async fn set_app_admin_scopes(
        &self,
        caller: AdminCaller<'_>,
        client_id: &str,
        allowed: bool,
    ) -> Result<App, AuthError> {
        let actor = self.admit(caller, Scope::AdminWrite).await?;
        let app = self
            .store()
            .set_app_admin_scopes(client_id, allowed)
            .await?
            .ok_or_else(|| AuthError::not_found("No application has that client_id"))?;
        self.cache().invalidate(&Invalidation::App(app.id));
        tracing::info!(by = %actor, app_id = %app.id, client_id = %app.client_id, allowed, "set whether the app may hold admin scopes");
        Ok(app)
    }

    pub async fn revoke_tokens(
        &self,
        caller: AdminCaller<'_>,
        owner: &TokenOwner,
    ) -> Result<RevokedTokens, AuthError> {
        let actor = self.admit(caller, Scope::AdminWrite).await?;
        let revoked = match owner {
            TokenOwner::Account(account) => {
                let account = self.resolve_account(account).await?;
                let revoked = self.store().revoke_account_tokens(account.id).await?;
                self.cache().invalidate(&Invalidation::Account(account.id));
                tracing::info!(by = %actor, account = %account.id, grants = revoked.grants, "revoked the tokens of an account");
                revoked
            }
            TokenOwner::App { client_id } => {
                let app = self.resolve_app(client_id).await?;
                let revoked = self.store().revoke_app_tokens(app.id).await?;
                self.cache().invalidate(&Invalidation::App(app.id));
                tracing::info!(by = %actor, app_id = %app.id, grants = revoked.grants, "revoked the tokens of an app");
                revoked
            }
        };
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    #[test]
    fn an_account_is_named_by_exactly_one_of_id_and_username() {
        assert_eq!(
            AccountRef::from_fields("42", "").unwrap(),
            AccountRef::Id(AccountId::new(42).unwrap())
        );
        assert_eq!(
            AccountRef::from_fields("", "Alice").unwrap(),
            AccountRef::Username(Username::parse("alice").unwrap())
        );
        for (id, name) in [("", ""), ("1", "alice"), ("", "not valid!")] {
            assert_eq!(
                AccountRef::from_fields(id, name).unwrap_err().kind,
                ErrorKind::InvalidRequest,
                "{id:?} {name:?}"
            );
        }
        assert_eq!(
            AccountRef::from_fields("abc", "").unwrap_err().kind,
            ErrorKind::NotFound
        );
    }
}
