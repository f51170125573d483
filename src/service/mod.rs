//! authd's operations: registering apps, authorizing, exchanging grants,
//! introspecting and revoking tokens, sessions and accounts. Each one is a
//! method of `AuthService`, written against the domain types and the store;
//! the gRPC services are thin adapters over these methods.
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::domain::app::AccessTokenFormat;
use crate::domain::error::AuthError;
use crate::domain::scope::{Scope, ScopeSet};
use crate::store::Store;

pub mod accounts;
pub mod admin;
pub mod apps;
pub mod authorizations;
pub mod authorize;
pub mod bearer;
pub mod cache;
pub mod clients;
pub mod clock;
pub mod cold_lookups;
pub mod introspect;
pub mod jwt;
pub mod key_encryption;
pub mod keys;
pub mod oidc;
pub mod password_pool;
pub mod policy;
pub mod revoke;
pub mod sessions;
pub mod throttle;
pub mod token;

/// How long each kind of secret lives.
#[derive(Clone, Debug)]
pub struct Lifetimes {
    pub authorization_code: Duration,
    /// Opaque access tokens; None means they never expire, as Mastodon
    /// clients expect.
    pub access_token: Option<Duration>,
    /// JWT access tokens always expire: a JWT verified offline cannot be
    /// recalled, so its lifetime bounds what a revocation misses.
    pub jwt_access_token: Duration,
    /// None means refresh tokens do not expire (each use rotates them).
    pub refresh_token: Option<Duration>,
    pub session: Duration,
}

impl Lifetimes {
    /// How long an access token of this format lives; None: for ever.
    pub fn access_token_of(&self, format: AccessTokenFormat) -> Option<Duration> {
        match format {
            AccessTokenFormat::Opaque => self.access_token,
            AccessTokenFormat::Jwt => Some(self.jwt_access_token),
        }
    }

    /// Whether any app can be issued refresh tokens: an authorization code
    /// yields one with every access token that expires, and any app may
    /// register for either format. JWTs always expire, so today this holds
    /// even with opaque tokens that never do (`--access-token-ttl never`).
    pub fn issues_refresh_tokens(&self) -> bool {
        AccessTokenFormat::ALL
            .iter()
            .any(|&format| self.access_token_of(format).is_some())
    }
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            authorization_code: Duration::from_secs(600),
            access_token: None,
            jwt_access_token: Duration::from_secs(3600),
            refresh_token: Some(Duration::from_secs(30 * 24 * 3600)),
            session: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The issuer identifier: `iss` in introspection and JWTs.
    pub issuer: String,
    pub lifetimes: Lifetimes,
    /// How many argon2 computations may run at once. Bounded so that a
    /// storm of logins cannot take every core from token introspection.
    pub password_hash_concurrency: usize,
    /// Most tokens the introspection cache holds (and clients, up to
    /// 100,000).
    pub cache_capacity: usize,
    /// Most tokens that missed the cache (unknown, forged or cold) looked
    /// up at once; they share the store's batched reader, so that a flood
    /// of them cannot take the whole pool from everything else.
    pub cold_lookup_concurrency: usize,
    /// How long after the database became unreachable introspection may
    /// still answer from the cache; None: not at all.
    pub serve_cached_during_outage: Option<std::time::Duration>,
    /// Limits on logins and app registrations.
    pub rate_limits: throttle::RateLimits,
    /// The time expiry is decided by: the system's, or a test's manual
    /// clock.
    pub clock: clock::Clock,
    /// What the signing keys' private halves are sealed with: the
    /// operator's (`authd serve` and the commands read it, see
    /// `config::DatabaseArgs`), the same on every replica.
    pub key_encryption_key: key_encryption::KeyEncryptionKey,
    /// The door's policy: the scopes each backend route needs (Mastodon's
    /// REST API unless `--policy` names a file).
    pub policy: Arc<crate::domain::policy::Policy>,
}

impl ServiceConfig {
    /// The grant types served, as RFC 8414's grant_types_supported names
    /// them. Mastodon's OAuthMetadataPresenter lists Doorkeeper's grant
    /// flows, and refresh_token only when refresh tokens are enabled; so
    /// here: refresh_token only when some app can be issued one.
    pub fn grant_types_supported(&self) -> Vec<&'static str> {
        let mut grants = vec!["authorization_code", "client_credentials"];
        if self.lifetimes.issues_refresh_tokens() {
            grants.push("refresh_token");
        }
        grants
    }

    pub fn new(issuer: impl Into<String>) -> Self {
        ServiceConfig {
            issuer: issuer.into(),
            lifetimes: Lifetimes::default(),
            // One core fewer than the machine has, so that a login storm
            // leaves a core for introspection.
            password_hash_concurrency: std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(1)
                .max(1),
            cache_capacity: 1_000_000,
            cold_lookup_concurrency: 64,
            serve_cached_during_outage: None,
            rate_limits: throttle::RateLimits::default(),
            clock: clock::Clock::System,
            // A fresh one, for tests and throwaway databases; `authd`
            // sets the operator's.
            key_encryption_key: key_encryption::KeyEncryptionKey::generate(),
            policy: crate::domain::policy::Policy::mastodon_shared(),
        }
    }
}

/// The service. Cheap to clone: all state is shared.
#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ServiceConfig,
    keys: jwt::KeyRing,
    password_hashing: password_pool::PasswordPool,
    cache: Arc<cache::IntrospectionCache>,
    cold_lookups: Arc<cold_lookups::ColdLookups>,
    throttles: Arc<throttle::Throttles>,
    metrics: crate::metrics::Metrics,
}

impl AuthService {
    /// Builds the service over a database that has a JWT signing key
    /// (`ensure_signing_key` writes the first one). Writes nothing, and
    /// starts no thread: the password hashing threads start with the first
    /// password to hash.
    pub async fn new(store: Store, config: ServiceConfig) -> Result<AuthService, AuthError> {
        let keys = jwt::KeyRing::load(
            &store,
            config.lifetimes.jwt_access_token,
            &config.key_encryption_key,
        )
        .await?;
        let permits = config.password_hash_concurrency.max(1);
        let cache = Arc::new(
            cache::IntrospectionCache::new(config.cache_capacity)
                .with_outage_grace(config.serve_cached_during_outage),
        );
        let throttles = Arc::new(throttle::Throttles::new(&config.rate_limits));
        let metrics = crate::metrics::Metrics::new();
        let cold_lookups = Arc::new(cold_lookups::ColdLookups::new(
            config.cold_lookup_concurrency,
            config.rate_limits.cold_lookups_per_client,
        ));
        metrics.attach_core(crate::metrics::CoreSources {
            store: store.clone(),
            cache: cache.clone(),
            throttles: throttles.clone(),
            cold_lookups: cold_lookups.clone(),
        });
        Ok(AuthService {
            inner: Arc::new(Inner {
                store,
                keys,
                password_hashing: password_pool::PasswordPool::new(permits),
                cache,
                cold_lookups,
                throttles,
                metrics,
                config,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The introspection cache; `cache::run_invalidation_listener` keeps
    /// it in step with the database, and until it runs it is bypassed.
    pub fn cache(&self) -> &Arc<cache::IntrospectionCache> {
        &self.inner.cache
    }

    /// Turns for cache-miss lookups (see `cold_lookup_concurrency`).
    pub(crate) fn cold_lookups(&self) -> &cold_lookups::ColdLookups {
        &self.inner.cold_lookups
    }

    /// The process's metrics; the in-process shim adds its own to them.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    pub(crate) fn throttles(&self) -> &throttle::Throttles {
        &self.inner.throttles
    }

    pub(crate) fn keys(&self) -> &jwt::KeyRing {
        &self.inner.keys
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    fn lifetimes(&self) -> &Lifetimes {
        &self.inner.config.lifetimes
    }

    /// The current time by the configured clock: what every expiry is
    /// decided by.
    pub(crate) fn now(&self) -> SystemTime {
        self.inner.config.clock.now()
    }

    /// Runs a CPU-heavy password computation on the hashing threads (at
    /// most `password_hash_concurrency` at once, at a lower priority), so
    /// the async runtime never stalls on argon2.
    async fn with_password_hashing<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let result = self.inner.password_hashing.run(work).await;
        if result.is_ok() {
            self.metrics().password_hashed();
        }
        result
    }
}

/// The scopes a request gets when it names none: `read`, or, for an app
/// that registered only parts of `read`, those parts. Mastodon's default
/// (`read`) intersected with what the app may have.
pub(crate) fn default_scopes(allowed: &ScopeSet) -> Result<ScopeSet, AuthError> {
    let read = ScopeSet::read();
    if read.is_within(allowed) {
        return Ok(read);
    }
    let parts = ScopeSet::from_scopes(allowed.iter().filter(|s| Scope::Read.satisfies(*s)));
    if parts.is_empty() {
        return Err(AuthError::invalid_scope(
            "The requested scope is invalid, unknown, or malformed.",
        ));
    }
    Ok(parts)
}

/// Parses a requested scope string against what the app may have:
/// empty means the default; otherwise every scope must be within `allowed`.
pub(crate) fn requested_scopes(requested: &str, allowed: &ScopeSet) -> Result<ScopeSet, AuthError> {
    if requested.trim().is_empty() {
        return default_scopes(allowed);
    }
    let scopes = ScopeSet::parse(requested).map_err(|_| {
        AuthError::invalid_scope("The requested scope is invalid, unknown, or malformed.")
    })?;
    if !scopes.is_within(allowed) {
        return Err(AuthError::invalid_scope(
            "The requested scope is invalid, unknown, or malformed.",
        ));
    }
    Ok(scopes)
}

/// The scopes a holder may be granted of `scopes`: all of them for one that
/// may hold admin scopes (an admin account; an app an admin allowed), the
/// rest otherwise. RFC 6749 section 3.3 lets the server grant less than was
/// asked, and the token response says what was granted, so clients that
/// ask for admin scopes opportunistically keep working; a request for
/// admin scopes alone is refused, as nothing of it can be granted.
///
/// Mastodon grants them to anyone and checks the role on each admin API
/// call; a resource server trusting introspection or a JWT cannot, so
/// authd never lets a token claim rights its holder lacks.
pub(crate) fn grantable_scopes(
    scopes: ScopeSet,
    holder_may_use_admin_scopes: bool,
) -> Result<ScopeSet, AuthError> {
    if holder_may_use_admin_scopes {
        return Ok(scopes);
    }
    let narrowed = scopes.without_admin();
    if narrowed.is_empty() {
        return Err(AuthError::invalid_scope(
            "The requested scope is invalid, unknown, or malformed.",
        ));
    }
    Ok(narrowed)
}

pub(crate) fn is_expired(expires_at: Option<SystemTime>, at: SystemTime) -> bool {
    expires_at.is_some_and(|e| e <= at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn refresh_token_is_a_supported_grant_while_any_app_can_be_issued_one() {
        let mut config = ServiceConfig::new("http://authd.test");
        config.lifetimes.access_token = None;
        // JWT apps still get refresh tokens: their access tokens expire.
        assert_eq!(
            config.grant_types_supported(),
            ["authorization_code", "client_credentials", "refresh_token"]
        );
        config.lifetimes.access_token = Some(Duration::from_secs(3600));
        assert!(config.lifetimes.issues_refresh_tokens());
        assert_eq!(
            config.lifetimes.access_token_of(AccessTokenFormat::Opaque),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn default_scope_is_read_intersected_with_the_app() {
        assert_eq!(default_scopes(&set("read write")).unwrap(), set("read"));
        assert_eq!(
            default_scopes(&set("read:statuses read:accounts write")).unwrap(),
            set("read:accounts read:statuses")
        );
        assert!(default_scopes(&set("write push")).is_err());
    }

    #[test]
    fn requested_scopes_must_be_within_the_app() {
        let app = set("read write:statuses");
        assert_eq!(requested_scopes("", &app).unwrap(), set("read"));
        assert_eq!(
            requested_scopes("read:accounts", &app).unwrap(),
            set("read:accounts")
        );
        assert!(requested_scopes("write", &app).is_err());
        assert!(requested_scopes("read bogus", &app).is_err());
    }
}
