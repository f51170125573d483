//! Accounts: created by admins (or by the CLI, to bootstrap the first
//! admin), read back. Disabling and the rest are in `admin`.
use super::AuthService;
use crate::domain::account::Account;
use crate::domain::account::{Email, Password, Username};
use crate::domain::error::{AuthError, ErrorKind};
use crate::domain::id::AccountId;
use crate::domain::password;
use crate::domain::scope::Scope;
use crate::store::accounts::CreateAccountError;

/// What a caller asked to create, before validation.
#[derive(Clone, Default)]
pub struct AccountRegistration {
    pub username: String,
    pub email: String,
    pub password: String,
    pub admin: bool,
}

impl AuthService {
    /// Creates an account on behalf of an admin token holding admin:write.
    pub async fn create_account(
        &self,
        admin_bearer: &str,
        input: &AccountRegistration,
    ) -> Result<Account, AuthError> {
        let admin = self
            .authorize_admin(admin_bearer, Scope::AdminWrite)
            .await?;
        let account = self.create_account_unchecked(input).await?;
        tracing::info!(
            admin = %admin.id,
            account = %account.id,
            "admin created account"
        );
        Ok(account)
    }

    /// Creates an account with no caller to check: for the operator's CLI,
    /// which bootstraps the first admin.
    pub async fn create_account_unchecked(
        &self,
        input: &AccountRegistration,
    ) -> Result<Account, AuthError> {
        let username = Username::parse(&input.username)?;
        let email = Email::parse(&input.email)?;
        let password = Password::parse(&input.password)?;
        let phc = self
            .with_password_hashing(move || password::hash(password.expose()))
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                AuthError::internal()
            })?;
        let account = self
            .store()
            .insert_account(username.as_str(), email.as_str(), &phc, input.admin)
            .await
            .map_err(|e| match e {
                CreateAccountError::UsernameTaken => {
                    AuthError::new(ErrorKind::AlreadyExists, "Username has already been taken")
                }
                CreateAccountError::EmailTaken => {
                    AuthError::new(ErrorKind::AlreadyExists, "Email has already been taken")
                }
                CreateAccountError::Store(e) => e.into(),
            })?;
        tracing::info!(account = %account.id, username = %account.username, admin = account.is_admin, "created account");
        Ok(account)
    }

    pub async fn get_account(&self, admin_bearer: &str, id: &str) -> Result<Account, AuthError> {
        self.authorize_admin(admin_bearer, Scope::AdminRead).await?;
        self.store()
            .account_by_id(parse_id(id)?)
            .await?
            .ok_or_else(|| AuthError::not_found("Record not found"))
    }

    /// The account behind a user token that may read it for `purpose`
    /// (see [`AccountPurpose`]).
    pub async fn verify_account_credentials(
        &self,
        bearer: &str,
        purpose: AccountPurpose,
    ) -> Result<Account, AuthError> {
        let ctx = self.authenticate_bearer(bearer).await?;
        let in_scope = ctx.token.scopes.satisfies_any(purpose.scopes());
        // Mastodon's verify_credentials asks for a user first; its
        // OAuth::UserinfoController for the scope first
        // (`doorkeeper_authorize! :profile` before `require_user!`).
        if purpose == AccountPurpose::Userinfo && !in_scope {
            return Err(AuthError::insufficient_scope());
        }
        let account_id = ctx.token.account_id.ok_or_else(AuthError::user_required)?;
        if !in_scope {
            return Err(AuthError::insufficient_scope());
        }
        self.store()
            .account_by_id(account_id)
            .await?
            .ok_or_else(AuthError::invalid_token)
    }
}

/// Why a token's account is read, which decides the scopes it must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountPurpose {
    /// Mastodon's verify_credentials: profile, read or read:accounts.
    VerifyCredentials,
    /// OAuth userinfo (Mastodon 4.4+): profile only; `read` is not enough.
    Userinfo,
}

impl AccountPurpose {
    /// Any one of these scopes will do.
    pub fn scopes(self) -> &'static [Scope] {
        match self {
            AccountPurpose::VerifyCredentials => {
                &[Scope::Profile, Scope::Read, Scope::ReadAccounts]
            }
            AccountPurpose::Userinfo => &[Scope::Profile],
        }
    }
}

fn parse_id(id: &str) -> Result<AccountId, AuthError> {
    id.parse()
        .map_err(|_| AuthError::not_found("Record not found"))
}
