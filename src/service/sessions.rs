//! Login sessions: email and password in, an opaque session out.
use std::net::IpAddr;
use std::time::SystemTime;

use super::AuthService;
use super::throttle::counted_address;
use crate::domain::account::Account;
use crate::domain::account::Email;
use crate::domain::error::{AuthError, ErrorKind};
use crate::domain::password;
use crate::domain::secret::Secret;
use crate::domain::session::Session;
use crate::metrics::LoginFailure;

pub struct OpenedSession {
    pub session: Secret,
    pub account: Account,
    pub expires_at: SystemTime,
}

/// Passwords longer than this are refused before hashing, so nobody can
/// make argon2 chew on megabytes.
const MAX_PASSWORD_LEN: usize = 1024;

impl AuthService {
    /// Checks credentials and opens a session. An unknown email and a wrong
    /// password get the same error after the same argon2 work. Attempts
    /// are rate limited by `client_ip` (when known, and not the host itself:
    /// see `throttle::counted_address`) and by the email asked
    /// for, known or not, before any work is done. Only wrong credentials
    /// keep counting: a success, or a failure of ours (the database down),
    /// gives the attempt back.
    pub async fn login(
        &self,
        email: &str,
        password: &Secret,
        client_ip: Option<IpAddr>,
    ) -> Result<OpenedSession, AuthError> {
        let result = self.throttled_login(email, password, client_ip).await;
        if let Err(e) = &result {
            self.metrics().login_failed(match e.kind {
                ErrorKind::InvalidCredentials => LoginFailure::InvalidCredentials,
                ErrorKind::RateLimited => LoginFailure::RateLimited,
                ErrorKind::AccountDisabled => LoginFailure::AccountDisabled,
                _ => LoginFailure::Other,
            });
        }
        result
    }

    async fn throttled_login(
        &self,
        email: &str,
        password: &Secret,
        client_ip: Option<IpAddr>,
    ) -> Result<OpenedSession, AuthError> {
        let throttles = self.throttles();
        let by_ip = client_ip
            .and_then(counted_address)
            .map(|key| throttles.login_by_ip.attempt(&key))
            .transpose()?;
        let by_account = throttles.login_by_account.attempt(&account_key(email))?;
        let result = self.check_credentials(email, password).await;
        let guessed = matches!(&result, Err(e) if e.kind == ErrorKind::InvalidCredentials);
        if !guessed {
            if let Some(attempt) = by_ip {
                throttles.login_by_ip.refund(attempt);
            }
            throttles.login_by_account.refund(by_account);
        }
        result
    }

    async fn check_credentials(
        &self,
        email: &str,
        password: &Secret,
    ) -> Result<OpenedSession, AuthError> {
        if password.expose().len() > MAX_PASSWORD_LEN {
            return Err(AuthError::invalid_credentials());
        }
        let account = match Email::parse(email) {
            Ok(email) => self.store().account_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        let presented = password.clone();
        let (account, matches) = match account {
            Some(account) => {
                let phc = account.password_hash.clone();
                let ok = self
                    .with_password_hashing(move || password::verify(presented.expose(), &phc))
                    .await?;
                (Some(account), ok)
            }
            None => {
                self.with_password_hashing(move || password::verify_dummy(presented.expose()))
                    .await?;
                (None, false)
            }
        };
        let Some(account) = account.filter(|_| matches) else {
            tracing::info!("login failed: invalid credentials");
            return Err(AuthError::invalid_credentials());
        };
        if account.is_disabled() {
            tracing::info!(account = %account.id, "login refused: account disabled");
            return Err(AuthError::account_disabled());
        }
        let session = Secret::generate();
        let expires_at = self.now() + self.lifetimes().session;
        self.store()
            .insert_session(&session.digest(), account.id, self.now(), expires_at)
            .await?;
        tracing::info!(account = %account.id, "logged in");
        Ok(OpenedSession {
            session,
            account,
            expires_at,
        })
    }

    pub async fn logout(&self, session: &Secret) -> Result<(), AuthError> {
        if !session.is_empty() {
            self.store().delete_session(&session.digest()).await?;
        }
        Ok(())
    }

    /// An open session of an enabled account.
    pub async fn get_session(&self, session: &Secret) -> Result<Session, AuthError> {
        if session.is_empty() || session.expose().len() > super::bearer::MAX_TOKEN_LEN {
            return Err(AuthError::invalid_session());
        }
        let open = self
            .store()
            .session_account(&session.digest(), self.now())
            .await?
            .ok_or_else(AuthError::invalid_session)?;
        if open.account.is_disabled() {
            return Err(AuthError::account_disabled());
        }
        Ok(open)
    }

    pub(crate) async fn session_account(
        &self,
        session: Option<&Secret>,
    ) -> Result<Account, AuthError> {
        let session = session.ok_or_else(AuthError::invalid_session)?;
        Ok(self.get_session(session).await?.account)
    }
}

/// The per-account limit's key: the email as accounts store it, whether or
/// not an account has it (so the limit itself tells nothing). Malformed
/// emails share one key: no account has one.
fn account_key(email: &str) -> String {
    Email::parse(email)
        .map(|e| e.as_str().to_owned())
        .unwrap_or_default()
}
