//! Token introspection (RFC 7662). The caller authenticates as a client and
//! sees its own tokens, or every token when it is a resource server. For
//! anything else the answer is active=false and nothing more (section 2.2),
//! so introspection cannot be used to learn about other clients' tokens.
use std::sync::Arc;
use std::time::SystemTime;

use super::bearer::MAX_TOKEN_LEN;
use super::{AuthService, is_expired};
use crate::domain::app::App;
use crate::domain::client_auth::ClientCredentials;
use crate::domain::error::AuthError;
use crate::domain::grant::{Token, TokenKind};
use crate::domain::secret::{Digest, Selector, TokenKey};

/// An active token, as introspection reports it: the record itself, shared
/// with the cache rather than copied out of it on every call.
#[derive(Clone, Debug)]
pub struct ActiveToken(Arc<Token>);

impl std::ops::Deref for ActiveToken {
    type Target = Token;

    fn deref(&self) -> &Token {
        &self.0
    }
}

impl ActiveToken {
    /// RFC 7662 token_type: how the token is used.
    pub fn token_type(&self) -> &'static str {
        match self.kind {
            TokenKind::Access => "Bearer",
            TokenKind::Refresh => "refresh_token",
        }
    }

    /// The subject: the account for user tokens, the client for app tokens.
    pub fn subject(&self) -> String {
        self.account_id
            .map_or_else(|| self.client_id().to_string(), |id| id.to_string())
    }
}

/// Which table to look in first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

impl TokenTypeHint {
    /// Unknown hints are ignored (RFC 7009 section 2.1, RFC 7662 section 2.1).
    pub fn parse(hint: &str) -> TokenTypeHint {
        match hint {
            "refresh_token" => TokenTypeHint::RefreshToken,
            _ => TokenTypeHint::AccessToken,
        }
    }
}

impl AuthService {
    /// Introspects `token` for the authenticated caller. `Ok(None)` is
    /// active=false.
    pub async fn introspect(
        &self,
        caller: Option<&ClientCredentials>,
        token: &str,
        hint: TokenTypeHint,
    ) -> Result<Option<ActiveToken>, AuthError> {
        let caller = self.authenticate_client(caller).await?;
        if token.is_empty() {
            return Err(AuthError::invalid_request(
                "Missing required parameter: token.",
            ));
        }
        Ok(self
            .find_token(token, hint, Some(&caller))
            .await?
            .filter(|record| may_see(&caller, record))
            .and_then(|record| active_view(record, self.now())))
    }

    /// Looks a token up as an access token and as a refresh token, in the
    /// order the hint suggests: from the cache when it can, otherwise from
    /// the database (then cached, if active). `for_client` is the
    /// authenticated caller, whose share of cold lookups a miss takes.
    pub(crate) async fn find_token(
        &self,
        token: &str,
        hint: TokenTypeHint,
        for_client: Option<&App>,
    ) -> Result<Option<Arc<Token>>, AuthError> {
        // The hot path, a cache hit, without the batch's bookkeeping.
        if !plausible_token(token) {
            return Ok(None);
        }
        let cache = self.cache();
        let digest = Digest::of(token);
        if let Some(hit) = cache.token(&digest, self.now()) {
            return Ok(Some(hit));
        }
        // Before the signature check (see find_tokens).
        let ticket = cache.ticket();
        let Some(key) = self.miss_key(token, digest).await? else {
            return Ok(None);
        };
        let mut found = vec![None];
        self.look_up_misses(&mut found, vec![(0, key)], ticket, hint, for_client)
            .await?;
        Ok(found.pop().flatten())
    }

    /// How a token that missed the cache is looked up, or None when it
    /// cannot be in the database: a JWT whose signature is not ours.
    async fn miss_key(&self, token: &str, digest: Digest) -> Result<Option<TokenKey>, AuthError> {
        if token.contains('.') && !self.keys().signature_is_valid(token).await? {
            return Ok(None);
        }
        Ok(Some(TokenKey {
            selector: selector_of(token),
            digest,
        }))
    }

    /// [`find_token`](Self::find_token) for many tokens at once, in their
    /// order. The misses share one turn at the database and are looked up
    /// together: one query for each kind of token, whatever their number.
    async fn find_tokens(
        &self,
        tokens: &[impl AsRef<str>],
        hint: TokenTypeHint,
        for_client: Option<&App>,
    ) -> Result<Vec<Option<Arc<Token>>>, AuthError> {
        let cache = self.cache();
        let at = self.now();
        let mut found: Vec<Option<Arc<Token>>> = tokens.iter().map(|_| None).collect();
        // Taken at the first miss, before any signature check: a key
        // withdrawn meanwhile flushes the cache, and these reads must then
        // not be cached. A call answered from the cache takes none.
        let mut ticket = None;
        let mut misses: Vec<(usize, TokenKey)> = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let token = token.as_ref();
            if !plausible_token(token) {
                continue;
            }
            let digest = Digest::of(token);
            if let Some(hit) = cache.token(&digest, at) {
                found[i] = Some(hit);
                continue;
            }
            ticket.get_or_insert_with(|| cache.ticket());
            if let Some(key) = self.miss_key(token, digest).await? {
                misses.push((i, key));
            }
        }
        if let (Some(ticket), false) = (ticket, misses.is_empty()) {
            self.look_up_misses(&mut found, misses, ticket, hint, for_client)
                .await?;
        }
        Ok(found)
    }

    /// Looks `misses` up in the database (index into `found`, key), on one
    /// turn of the caller's share: one query for each kind of token,
    /// whatever their number. What is found goes into `found`, and, if
    /// active, into the cache under `ticket`.
    async fn look_up_misses(
        &self,
        found: &mut [Option<Arc<Token>>],
        mut misses: Vec<(usize, TokenKey)>,
        ticket: super::cache::Ticket,
        hint: TokenTypeHint,
        for_client: Option<&App>,
    ) -> Result<(), AuthError> {
        let cache = self.cache();
        let caller = for_client.map(|app| super::cold_lookups::Caller {
            app_id: app.id,
            is_resource_server: app.is_resource_server,
        });
        let _turn = self.cold_lookups().token(caller, misses.len()).await?;
        let (first, second) = match hint {
            TokenTypeHint::AccessToken => (TokenKind::Access, TokenKind::Refresh),
            TokenTypeHint::RefreshToken => (TokenKind::Refresh, TokenKind::Access),
        };
        for kind in [first, second] {
            if misses.is_empty() {
                break;
            }
            let keys: Vec<TokenKey> = misses.iter().map(|(_, key)| *key).collect();
            let records = self.store().tokens_by_keys_batched(kind, keys).await?;
            let mut still_missing = Vec::new();
            for ((i, key), record) in misses.into_iter().zip(records) {
                match record {
                    Some(record) => {
                        let record = cache.shareable(held(record));
                        if !is_expired(record.expires_at, self.now()) {
                            cache.insert_token(ticket, key.digest, record.clone());
                        }
                        found[i] = Some(record);
                    }
                    None => still_missing.push((i, key)),
                }
            }
            misses = still_missing;
        }
        Ok(())
    }

    /// Introspects each of `tokens` for one authenticated caller.
    pub async fn introspect_batch(
        &self,
        caller: Option<&ClientCredentials>,
        tokens: &[String],
        hint: TokenTypeHint,
    ) -> Result<Vec<Option<ActiveToken>>, AuthError> {
        if tokens.is_empty() || tokens.len() > MAX_BATCH {
            return Err(AuthError::invalid_request(
                "Between 1 and 1000 tokens are required.",
            ));
        }
        let caller = self.authenticate_client(caller).await?;
        let at = self.now();
        let found = self.find_tokens(tokens, hint, Some(&caller)).await?;
        Ok(found
            .into_iter()
            .map(|record| {
                record
                    .filter(|record| may_see(&caller, record))
                    .and_then(|record| active_view(record, at))
            })
            .collect())
    }
}

/// A token as its holder holds it now: `admin:*` scopes only while the
/// holder may hold them (an admin account, or an app an admin allowed), so
/// that a token whose account lost the admin role stops claiming it.
pub(crate) fn held(mut record: Token) -> Token {
    if !record.holder_may_use_admin_scopes {
        record.scopes = record.scopes.without_admin();
    }
    record
}

/// Most tokens in one IntrospectBatch call.
pub const MAX_BATCH: usize = 1000;

/// Whether `token` could be one authd issued: an opaque token (43
/// characters of URL-safe base64) or a JWT (three base64url parts).
/// Anything else is inactive without a database lookup.
pub(crate) fn plausible_token(token: &str) -> bool {
    let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if token.len() == 43 {
        return token.bytes().all(base64url);
    }
    token.len() <= MAX_TOKEN_LEN
        && token.bytes().filter(|&b| b == b'.').count() == 2
        && token.bytes().all(|b| base64url(b) || b == b'.')
}

/// How `token` is looked up in the database: by the selector in an opaque
/// token or in a JWT's `jti`, and by its digest.
pub(crate) fn token_key(token: &str) -> TokenKey {
    TokenKey {
        selector: selector_of(token),
        digest: Digest::of(token),
    }
}

fn selector_of(token: &str) -> Option<Selector> {
    if token.contains('.') {
        super::jwt::unverified_jti(token).and_then(|jti| Selector::of_opaque(&jti))
    } else {
        Selector::of_opaque(token)
    }
}

fn may_see(caller: &App, token: &Token) -> bool {
    caller.is_resource_server || caller.id == token.app_id()
}

/// The token as introspection (and the door) sees it now: None unless
/// it is active.
pub(crate) fn active_view(record: Arc<Token>, at: SystemTime) -> Option<ActiveToken> {
    // A token left with no scope at all (its only ones were admin scopes
    // its holder lost) grants nothing.
    if record.revoked
        || record.account_disabled
        || record.scopes.is_empty()
        || is_expired(record.expires_at, at)
    {
        return None;
    }
    Some(ActiveToken(record))
}
