//! JWT signing keys for operators: listing and rotating them, and keeping
//! every replica's key ring in step with the database.
//!
//! After a rotation, the replica that rotated signs with the new key at
//! once; the others hear of it through the invalidation channel (a trigger
//! on signing_keys, migrations/0003) and reload, or at the latest after
//! `KEY_REFRESH_INTERVAL`. A retired key stays in the JWKS, and keeps
//! verifying, for the JWT lifetime and `jwt::ROTATION_MARGIN` after its
//! retirement: by then every token it signed has expired.
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::AuthService;
use super::admin::AdminCaller;
use super::cache::Invalidation;
use super::jwt::KeyInfo;
use super::key_encryption::KeyEncryptionKey;
use crate::domain::error::AuthError;
use crate::domain::scope::Scope;
use crate::store::Store;

/// How often each replica reloads its keys even without a notification:
/// what bounds a missed one (a lost listener, or the cache turned off).
/// Shorter than `jwt::ROTATION_MARGIN`, so that what a late replica signs
/// with the old key still verifies for its whole lifetime.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(15);

/// A rotation: the keys that sign from now on (one per algorithm), and the
/// keys they replaced.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub keys: Vec<KeyInfo>,
    pub retired: Vec<KeyInfo>,
}

impl Rotation {
    /// The new key that signs JWT access tokens by default.
    pub fn access_token_key(&self) -> Option<&KeyInfo> {
        self.keys
            .iter()
            .find(|k| k.algorithm == super::jwt::DEFAULT_ACCESS_TOKEN_ALGORITHM)
    }
}

impl AuthService {
    /// A start-up step, before `AuthService::new`: writes a JWT signing key
    /// if the database has none, since the service signs with one from its
    /// first request on.
    pub async fn ensure_signing_key(
        store: &Store,
        kek: &KeyEncryptionKey,
    ) -> Result<(), AuthError> {
        super::jwt::KeyRing::ensure_keys(store, kek).await
    }

    /// The keys that sign or still verify, newest first.
    pub async fn signing_keys(&self, caller: AdminCaller<'_>) -> Result<Vec<KeyInfo>, AuthError> {
        self.admit(caller, Scope::AdminRead).await?;
        self.keys().published().await
    }

    /// Retires the signing key(s) and creates a new one, which signs every
    /// JWT from now on.
    pub async fn rotate_signing_key(&self, caller: AdminCaller<'_>) -> Result<Rotation, AuthError> {
        let actor = self.admit(caller, Scope::AdminWrite).await?;
        let (kids, retired) = self.keys().rotate().await?;
        let published = self.keys().published().await?;
        let keys: Vec<KeyInfo> = published
            .iter()
            .filter(|k| kids.contains(&k.kid))
            .cloned()
            .collect();
        if keys.len() != kids.len() {
            tracing::error!(?kids, "a new signing key is not in the database");
            return Err(AuthError::internal());
        }
        let retired = published
            .into_iter()
            .filter(|k| retired.contains(&k.kid))
            .collect::<Vec<_>>();
        tracing::info!(by = %actor, ?kids, retired = ?retired.iter().map(|k| &k.kid).collect::<Vec<_>>(), "rotated the JWT signing keys");
        Ok(Rotation { keys, retired })
    }

    /// Reloads the key ring; if a key was withdrawn before its time, the
    /// introspection cache may hold tokens it signed, so it is flushed.
    pub async fn reload_keys(&self) -> Result<(), AuthError> {
        if self.keys().reload().await? {
            tracing::warn!(
                "a signing key was withdrawn before its tokens expired; introspection cache flushed"
            );
            self.cache().invalidate(&Invalidation::Everything);
        }
        Ok(())
    }
}

/// Reloads the signing keys whenever the invalidation listener hears they
/// changed, and every `KEY_REFRESH_INTERVAL`, until `stop`.
pub async fn run_key_watcher(service: AuthService, stop: CancellationToken) {
    let cache = service.cache().clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = cache.key_changed() => {}
            _ = tokio::time::sleep(KEY_REFRESH_INTERVAL) => {}
        }
        if let Err(e) = service.reload_keys().await {
            tracing::warn!(error = %e, "reloading the signing keys failed; trying again later");
        }
    }
}
