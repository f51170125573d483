//! Authorization codes, grants, access and refresh tokens, and consents.
//!
//! A grant is one redemption of a code (or one client_credentials
//! issuance); its tokens live and die with it. The operations that must be
//! atomic (redeeming a code, rotating a refresh token) run in a `GrantTx`,
//! whose row locks serialize them against each other and against
//! revocation: two concurrent redemptions of one code cannot both succeed,
//! and a refresh cannot add a token to a grant being revoked.
use std::sync::Arc;
use std::time::SystemTime;

use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::accounts::{account_id, optional_account_id};
use super::apps::{app_from_row, parse_stored_scopes, scopes_to_sql};
use super::{Conn, Store, StoreError};
use crate::domain::app::AccessTokenFormat;
use crate::domain::grant::{
    AuthorizedApp, Code, Consent, IssuedTo, RefreshToken, Token, TokenKind,
};
use crate::domain::id::{AccessTokenId, AccountId, AppId, GrantId, RefreshTokenId};
use crate::domain::oidc::{ClaimsRequest, Nonce};
use crate::domain::pkce::CodeChallenge;
use crate::domain::redirect_uri::RedirectUri;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{Digest, Selector, TokenKey};

pub struct NewCode<'a> {
    pub digest: Digest,
    pub app_id: AppId,
    pub account_id: AccountId,
    pub redirect_uri: &'a str,
    pub scopes: &'a ScopeSet,
    pub code_challenge: Option<&'a CodeChallenge>,
    pub expires_at: SystemTime,
    pub nonce: Option<&'a Nonce>,
    /// When the user signed in (the session's sign-in).
    pub auth_time: SystemTime,
    pub id_token_claims: &'a ClaimsRequest,
}

pub struct NewAccessToken {
    pub selector: Selector,
    pub digest: Digest,
    pub format: AccessTokenFormat,
    pub scopes: ScopeSet,
    pub created_at: SystemTime,
    pub expires_at: Option<SystemTime>,
}

pub struct NewRefreshToken {
    pub selector: Selector,
    pub digest: Digest,
    pub scopes: ScopeSet,
    pub created_at: SystemTime,
    pub expires_at: Option<SystemTime>,
}

/// The token of a row of `token_lookup_sql!`.
fn token_from_row(kind: TokenKind, row: &Row) -> Result<Token, StoreError> {
    let scopes: Vec<String> = row.try_get("scopes")?;
    let disabled_at: Option<SystemTime> = row.try_get("disabled_at")?;
    Ok(Token {
        kind,
        grant_id: GrantId::new(row.try_get("grant_id")?),
        issued_to: Arc::new(IssuedTo {
            app_id: AppId::new(row.try_get("app_id")?),
            client_id: row.try_get::<_, &str>("client_id")?.into(),
        }),
        account_id: optional_account_id(row, "account_id")?,
        username: row.try_get::<_, Option<&str>>("username")?.map(Box::from),
        account_disabled: disabled_at.is_some(),
        holder_may_use_admin_scopes: row.try_get("holder_may_use_admin_scopes")?,
        scopes: parse_stored_scopes(&scopes)?,
        created_at: row.try_get::<_, SystemTime>("created_at")?.into(),
        expires_at: row.try_get("expires_at")?,
        revoked: row.try_get("revoked")?,
    })
}

/// The rows of a token table (`$table`, where `$spent` says a row can no
/// longer be used) found by selector and by legacy digest, each with what
/// its grant, app and account say of it. A row is found by its selector,
/// or, if it was issued before tokens had selectors, by its digest in the
/// small partial index that holds those rows only. The caller then
/// compares the row's digest with the presented token's (`digest_matches`).
macro_rules! token_lookup_sql {
    ($table:literal, $spent:literal, $selector:literal, $digest:literal) => {
        concat!(
            "SELECT t.selector, t.digest, t.scopes, t.created_at, t.expires_at,
                    (", $spent, " OR g.revoked_at IS NOT NULL) AS revoked,
                    g.id AS grant_id, g.app_id, ap.client_id, g.account_id, ac.username, ac.disabled_at,
                    CASE WHEN g.account_id IS NULL THEN ap.may_use_admin_scopes
                         ELSE coalesce(ac.is_admin, false) END AS holder_may_use_admin_scopes
             FROM (SELECT * FROM ", $table, " WHERE selector ", $selector, "
                   UNION ALL
                   SELECT * FROM ", $table, " WHERE selector IS NULL AND digest ", $digest, ") t
             JOIN grants g ON g.id = t.grant_id
             JOIN apps ap ON ap.id = g.app_id
             LEFT JOIN accounts ac ON ac.id = g.account_id"
        )
    };
}

/// One token: its selector is $1, its digest $2.
const ACCESS_TOKEN_BY_KEY: &str =
    token_lookup_sql!("access_tokens", "t.revoked_at IS NOT NULL", "= $1", "= $2");
const REFRESH_TOKEN_BY_KEY: &str =
    token_lookup_sql!("refresh_tokens", "t.used_at IS NOT NULL", "= $1", "= $2");
/// Many tokens in one query: their selectors are $1, their digests $2.
/// Public for the test that checks its plan (tests/api/cache.rs).
pub const ACCESS_TOKENS_BY_KEYS: &str = token_lookup_sql!(
    "access_tokens",
    "t.revoked_at IS NOT NULL",
    "= ANY($1)",
    "= ANY($2)"
);
const REFRESH_TOKENS_BY_KEYS: &str = token_lookup_sql!(
    "refresh_tokens",
    "t.used_at IS NOT NULL",
    "= ANY($1)",
    "= ANY($2)"
);

/// Whether the row found for `key` is the presented token's: its stored
/// digest equals the token's, compared in constant time. A selector alone
/// (say, a forged token that reuses one) finds a row but proves nothing.
fn digest_matches(row: &Row, key: &TokenKey) -> Result<bool, StoreError> {
    let stored: &[u8] = row.try_get("digest")?;
    Ok(Digest::from_slice(stored).is_some_and(|stored| stored.ct_eq(&key.digest)))
}

/// The lookup parameters for `key`: its selector (NULL when it has none,
/// which matches no row) and its digest.
fn key_params(key: &TokenKey) -> (Option<&[u8]>, &[u8]) {
    (
        key.selector.as_ref().map(|s| s.as_bytes().as_slice()),
        key.digest.as_bytes().as_slice(),
    )
}

impl Store {
    pub async fn insert_code(&self, code: &NewCode<'_>) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO authorization_codes
            (digest, app_id, account_id, redirect_uri, scopes, code_challenge, expires_at,
             nonce, auth_time, id_token_claims)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(SQL).await?;
        conn.execute(
            &stmt,
            &[
                &code.digest.as_bytes().as_slice(),
                &code.app_id.get(),
                &code.account_id.get(),
                &code.redirect_uri,
                &scopes_to_sql(code.scopes),
                &code.code_challenge.map(CodeChallenge::as_str),
                &code.expires_at,
                &code.nonce.map(Nonce::as_str),
                &code.auth_time,
                &code.id_token_claims.names(),
            ],
        )
        .await?;
        Ok(())
    }

    /// What an account has consented to give an app, if anything, with the
    /// scopes of each unrevoked access token it holds for the app (in an
    /// unrevoked grant): what Doorkeeper's `matching_token?` looks for
    /// before it skips the consent page. Revoking a token, its grant, every
    /// token of the account (a password reset, an admin) or of the app ends
    /// what it grants here. One round trip.
    pub async fn consent(
        &self,
        account_id: AccountId,
        app_id: AppId,
    ) -> Result<Option<Consent>, StoreError> {
        const SQL: &str = "
            SELECT c.scopes,
                   ARRAY(SELECT array_to_string(t.scopes, ' ')
                         FROM grants g JOIN access_tokens t ON t.grant_id = g.id
                         WHERE g.account_id = c.account_id AND g.app_id = c.app_id
                           AND g.revoked_at IS NULL AND t.revoked_at IS NULL
                         ORDER BY t.id DESC LIMIT 100) AS live_token_scopes
            FROM consents c WHERE c.account_id = $1 AND c.app_id = $2";
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(SQL).await?;
        let Some(row) = conn
            .query_opt(&stmt, &[&account_id.get(), &app_id.get()])
            .await?
        else {
            return Ok(None);
        };
        let live: Vec<String> = row.try_get("live_token_scopes")?;
        Ok(Some(Consent {
            scopes: parse_stored_scopes(&row.try_get::<_, Vec<String>>("scopes")?)?,
            live_token_scopes: live
                .iter()
                .map(|held| {
                    ScopeSet::parse(held)
                        .map_err(|e| StoreError::Malformed(format!("stored scopes: {e}")))
                })
                .collect::<Result<_, _>>()?,
        }))
    }

    /// Adds `scopes` to what the account has consented to give the app.
    pub async fn record_consent(
        &self,
        account_id: AccountId,
        app_id: AppId,
        scopes: &ScopeSet,
    ) -> Result<(), StoreError> {
        const SQL: &str = "
            INSERT INTO consents (account_id, app_id, scopes) VALUES ($1, $2, $3)
            ON CONFLICT (account_id, app_id) DO UPDATE SET
                scopes = ARRAY(SELECT DISTINCT unnest(consents.scopes || EXCLUDED.scopes) ORDER BY 1),
                updated_at = now()";
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(SQL).await?;
        conn.execute(
            &stmt,
            &[&account_id.get(), &app_id.get(), &scopes_to_sql(scopes)],
        )
        .await?;
        Ok(())
    }

    /// Issues an app-only access token in a grant of its own, in one
    /// statement (one round trip, one commit).
    pub async fn issue_app_token(
        &self,
        app_id: AppId,
        token: &NewAccessToken,
    ) -> Result<(), StoreError> {
        const SQL: &str = "
            WITH g AS (
                INSERT INTO grants (app_id, scopes, created_at) VALUES ($1, $2, $3) RETURNING id
            )
            INSERT INTO access_tokens (selector, digest, grant_id, format, scopes, created_at, expires_at)
            SELECT $7, $4, g.id, $5, $2, $3, $6 FROM g";
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(SQL).await?;
        conn.execute(
            &stmt,
            &[
                &app_id.get(),
                &scopes_to_sql(&token.scopes),
                &token.created_at,
                &token.digest.as_bytes().as_slice(),
                &token.format.as_str(),
                &token.expires_at,
                &token.selector.as_bytes().as_slice(),
            ],
        )
        .await?;
        Ok(())
    }

    pub async fn access_token(&self, key: &TokenKey) -> Result<Option<Token>, StoreError> {
        self.token_lookup(TokenKind::Access, ACCESS_TOKEN_BY_KEY, key)
            .await
    }

    pub async fn refresh_token(&self, key: &TokenKey) -> Result<Option<Token>, StoreError> {
        self.token_lookup(TokenKind::Refresh, REFRESH_TOKEN_BY_KEY, key)
            .await
    }

    /// Looks up many tokens of one kind in one query: the record found for
    /// each key, in the keys' order.
    pub async fn tokens_by_keys(
        &self,
        kind: TokenKind,
        keys: &[&TokenKey],
    ) -> Result<Vec<Option<Token>>, StoreError> {
        use std::collections::HashMap;
        let sql = match kind {
            TokenKind::Access => ACCESS_TOKENS_BY_KEYS,
            TokenKind::Refresh => REFRESH_TOKENS_BY_KEYS,
        };
        let mut by_selector: HashMap<&[u8], Vec<usize>> = HashMap::new();
        let mut by_digest: HashMap<&[u8], Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            if let Some(selector) = &key.selector {
                by_selector
                    .entry(selector.as_bytes().as_slice())
                    .or_default()
                    .push(i);
            }
            by_digest
                .entry(key.digest.as_bytes().as_slice())
                .or_default()
                .push(i);
        }
        let selectors: Vec<&[u8]> = by_selector.keys().copied().collect();
        let digests: Vec<&[u8]> = by_digest.keys().copied().collect();
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(sql).await?;
        let mut found: Vec<Option<Token>> = keys.iter().map(|_| None).collect();
        for row in conn.query(&stmt, &[&selectors, &digests]).await? {
            let selector: Option<&[u8]> = row.try_get("selector")?;
            let candidates = match selector {
                Some(selector) => by_selector.get(selector),
                None => by_digest.get(row.try_get::<_, &[u8]>("digest")?),
            };
            for &i in candidates.into_iter().flatten() {
                if found[i].is_none() && digest_matches(&row, keys[i])? {
                    found[i] = Some(token_from_row(kind, &row)?);
                }
            }
        }
        Ok(found)
    }

    async fn token_lookup(
        &self,
        kind: TokenKind,
        sql: &str,
        key: &TokenKey,
    ) -> Result<Option<Token>, StoreError> {
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(sql).await?;
        let (selector, digest) = key_params(key);
        for row in conn.query(&stmt, &[&selector, &digest]).await? {
            if digest_matches(&row, key)? {
                return Ok(Some(token_from_row(kind, &row)?));
            }
        }
        Ok(None)
    }

    /// Revokes one access token, found by its key, and nothing else in its
    /// grant.
    pub async fn revoke_access_token(&self, key: &TokenKey) -> Result<(), StoreError> {
        const BY_SELECTOR: &str =
            "UPDATE access_tokens SET revoked_at = coalesce(revoked_at, now())
                                   WHERE selector = $1 AND digest = $2";
        const BY_DIGEST: &str = "UPDATE access_tokens SET revoked_at = coalesce(revoked_at, now())
                                 WHERE selector IS NULL AND digest = $1";
        let conn = self.conn().await?;
        let (selector, digest) = key_params(key);
        match selector {
            Some(selector) => {
                let stmt = conn.prepare_cached(BY_SELECTOR).await?;
                conn.execute(&stmt, &[&selector, &digest]).await?;
            }
            None => {
                let stmt = conn.prepare_cached(BY_DIGEST).await?;
                conn.execute(&stmt, &[&digest]).await?;
            }
        }
        Ok(())
    }

    /// Revokes a grant: every access token and refresh token in it.
    pub async fn revoke_grant(&self, grant_id: GrantId) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(REVOKE_GRANT).await?;
        conn.execute(&stmt, &[&grant_id.get()]).await?;
        Ok(())
    }
}

impl Store {
    pub async fn authorized_apps(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<AuthorizedApp>, StoreError> {
        const SQL: &str = "
            SELECT ap.*, g.granted_scopes, g.authorized_at
            FROM (
                SELECT app_id, min(created_at) AS authorized_at,
                       ARRAY(SELECT DISTINCT x FROM unnest(array_agg(s)) AS x ORDER BY 1) AS granted_scopes
                FROM grants, unnest(scopes) AS s
                WHERE account_id = $1 AND revoked_at IS NULL
                GROUP BY app_id
            ) g
            JOIN apps ap ON ap.id = g.app_id
            ORDER BY g.authorized_at DESC, ap.id";
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(SQL).await?;
        conn.query(&stmt, &[&account_id.get()])
            .await?
            .iter()
            .map(|row| {
                Ok(AuthorizedApp {
                    app: app_from_row(row)?,
                    scopes: parse_stored_scopes(&row.try_get::<_, Vec<String>>("granted_scopes")?)?,
                    authorized_at: row.try_get("authorized_at")?,
                })
            })
            .collect()
    }

    /// Revokes every grant the account gave the app and forgets the
    /// consent. Returns how many grants were revoked.
    pub async fn revoke_authorized_app(
        &self,
        account_id: AccountId,
        app_id: AppId,
    ) -> Result<u64, StoreError> {
        let (account_id, app_id) = (account_id.get(), app_id.get());
        const REVOKE: &str = "UPDATE grants SET revoked_at = now()
                              WHERE account_id = $1 AND app_id = $2 AND revoked_at IS NULL";
        const FORGET: &str = "DELETE FROM consents WHERE account_id = $1 AND app_id = $2";
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let revoked = tx.execute(REVOKE, &[&account_id, &app_id]).await?;
        tx.execute(FORGET, &[&account_id, &app_id]).await?;
        tx.commit().await?;
        Ok(revoked)
    }
}

const REVOKE_GRANT: &str =
    "UPDATE grants SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1";

/// Opens a transaction for code redemption or refresh rotation.
pub async fn begin(conn: &mut Conn) -> Result<GrantTx<'_>, StoreError> {
    Ok(GrantTx {
        tx: conn.transaction().await?,
    })
}

pub struct GrantTx<'a> {
    tx: Transaction<'a>,
}

impl GrantTx<'_> {
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }

    /// The code, locked until commit, so that a concurrent redemption waits
    /// and then sees it redeemed.
    pub async fn lock_code(&self, digest: &Digest) -> Result<Option<Code>, StoreError> {
        const SQL: &str =
            "SELECT c.app_id, c.account_id, c.redirect_uri, c.scopes, c.code_challenge,
                                  c.expires_at, c.redeemed_at, c.grant_id,
                                  c.nonce, c.auth_time, c.id_token_claims,
                                  a.disabled_at IS NOT NULL AS account_disabled
                           FROM authorization_codes c JOIN accounts a ON a.id = c.account_id
                           WHERE c.digest = $1 FOR UPDATE OF c";
        let stmt = self.tx.prepare_cached(SQL).await?;
        let Some(row) = self
            .tx
            .query_opt(&stmt, &[&digest.as_bytes().as_slice()])
            .await?
        else {
            return Ok(None);
        };
        let scopes: Vec<String> = row.try_get("scopes")?;
        Ok(Some(Code {
            app_id: AppId::new(row.try_get("app_id")?),
            account_id: account_id(&row, "account_id")?,
            redirect_uri: RedirectUri::from_registered(row.try_get("redirect_uri")?),
            scopes: parse_stored_scopes(&scopes)?,
            code_challenge: row
                .try_get::<_, Option<String>>("code_challenge")?
                .map(CodeChallenge::from_stored),
            expires_at: row.try_get("expires_at")?,
            redeemed_at: row.try_get("redeemed_at")?,
            grant_id: row.try_get::<_, Option<i64>>("grant_id")?.map(GrantId::new),
            nonce: row
                .try_get::<_, Option<String>>("nonce")?
                .map(Nonce::from_stored),
            auth_time: row.try_get("auth_time")?,
            id_token_claims: ClaimsRequest::from_names(
                &row.try_get::<_, Vec<String>>("id_token_claims")?,
            ),
            account_disabled: row.try_get("account_disabled")?,
        }))
    }

    pub async fn mark_code_redeemed(
        &self,
        digest: &Digest,
        grant_id: GrantId,
    ) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE authorization_codes SET redeemed_at = now(), grant_id = $2 WHERE digest = $1";
        let stmt = self.tx.prepare_cached(SQL).await?;
        self.tx
            .execute(&stmt, &[&digest.as_bytes().as_slice(), &grant_id.get()])
            .await?;
        Ok(())
    }

    pub async fn create_grant(
        &self,
        app_id: AppId,
        account_id: Option<AccountId>,
        scopes: &ScopeSet,
        created_at: SystemTime,
        auth_time: Option<SystemTime>,
    ) -> Result<GrantId, StoreError> {
        const SQL: &str = "INSERT INTO grants (app_id, account_id, scopes, created_at, auth_time)
                           VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let stmt = self.tx.prepare_cached(SQL).await?;
        let row = self
            .tx
            .query_one(
                &stmt,
                &[
                    &app_id.get(),
                    &account_id.map(AccountId::get),
                    &scopes_to_sql(scopes),
                    &created_at,
                    &auth_time,
                ],
            )
            .await?;
        Ok(GrantId::new(row.try_get(0)?))
    }

    pub async fn insert_access_token(
        &self,
        grant_id: GrantId,
        token: &NewAccessToken,
    ) -> Result<AccessTokenId, StoreError> {
        const SQL: &str =
            "INSERT INTO access_tokens (digest, grant_id, format, scopes, created_at, expires_at, selector)
                           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
        let stmt = self.tx.prepare_cached(SQL).await?;
        let row = self
            .tx
            .query_one(
                &stmt,
                &[
                    &token.digest.as_bytes().as_slice(),
                    &grant_id.get(),
                    &token.format.as_str(),
                    &scopes_to_sql(&token.scopes),
                    &token.created_at,
                    &token.expires_at,
                    &token.selector.as_bytes().as_slice(),
                ],
            )
            .await?;
        Ok(AccessTokenId::new(row.try_get(0)?))
    }

    pub async fn insert_refresh_token(
        &self,
        grant_id: GrantId,
        access_token_id: AccessTokenId,
        token: &NewRefreshToken,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO refresh_tokens (digest, grant_id, access_token_id, scopes, created_at, expires_at, selector)
                           VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let stmt = self.tx.prepare_cached(SQL).await?;
        self.tx
            .execute(
                &stmt,
                &[
                    &token.digest.as_bytes().as_slice(),
                    &grant_id.get(),
                    &access_token_id.get(),
                    &scopes_to_sql(&token.scopes),
                    &token.created_at,
                    &token.expires_at,
                    &token.selector.as_bytes().as_slice(),
                ],
            )
            .await?;
        Ok(())
    }

    /// The refresh token and its grant, both locked until commit: rotation
    /// and revocation of the same family take turns.
    pub async fn lock_refresh_token(
        &self,
        key: &TokenKey,
    ) -> Result<Option<RefreshToken>, StoreError> {
        // Found as in REFRESH_TOKEN_BY_KEY; FOR UPDATE does not take a UNION.
        const SQL: &str = "
            SELECT r.id, r.digest, r.grant_id, g.app_id, g.account_id, r.scopes, r.access_token_id,
                   r.expires_at, r.used_at, g.revoked_at IS NOT NULL AS grant_revoked, g.auth_time,
                   coalesce(a.disabled_at IS NOT NULL, false) AS account_disabled,
                   CASE WHEN g.account_id IS NULL THEN ap.may_use_admin_scopes
                        ELSE coalesce(a.is_admin, false) END AS holder_may_use_admin_scopes
            FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
            JOIN apps ap ON ap.id = g.app_id
            LEFT JOIN accounts a ON a.id = g.account_id
            WHERE r.id IN (SELECT id FROM refresh_tokens WHERE selector = $1
                           UNION ALL
                           SELECT id FROM refresh_tokens WHERE selector IS NULL AND digest = $2)
            FOR UPDATE OF r, g";
        let stmt = self.tx.prepare_cached(SQL).await?;
        let (selector, digest) = key_params(key);
        let mut found = None;
        for row in self.tx.query(&stmt, &[&selector, &digest]).await? {
            if digest_matches(&row, key)? {
                found = Some(row);
                break;
            }
        }
        let Some(row) = found else {
            return Ok(None);
        };
        let scopes: Vec<String> = row.try_get("scopes")?;
        Ok(Some(RefreshToken {
            id: RefreshTokenId::new(row.try_get("id")?),
            grant_id: GrantId::new(row.try_get("grant_id")?),
            app_id: AppId::new(row.try_get("app_id")?),
            account_id: optional_account_id(&row, "account_id")?,
            scopes: parse_stored_scopes(&scopes)?,
            access_token_id: row
                .try_get::<_, Option<i64>>("access_token_id")?
                .map(AccessTokenId::new),
            expires_at: row.try_get("expires_at")?,
            used_at: row.try_get("used_at")?,
            grant_revoked: row.try_get("grant_revoked")?,
            account_disabled: row.try_get("account_disabled")?,
            holder_may_use_admin_scopes: row.try_get("holder_may_use_admin_scopes")?,
            auth_time: row.try_get("auth_time")?,
        }))
    }

    pub async fn mark_refresh_token_used(&self, id: RefreshTokenId) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE refresh_tokens SET used_at = now() WHERE id = $1";
        let stmt = self.tx.prepare_cached(SQL).await?;
        self.tx.execute(&stmt, &[&id.get()]).await?;
        Ok(())
    }

    pub async fn revoke_access_token(&self, id: AccessTokenId) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE access_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1";
        let stmt = self.tx.prepare_cached(SQL).await?;
        self.tx.execute(&stmt, &[&id.get()]).await?;
        Ok(())
    }

    pub async fn revoke_grant(&self, grant_id: GrantId) -> Result<(), StoreError> {
        let stmt = self.tx.prepare_cached(REVOKE_GRANT).await?;
        self.tx.execute(&stmt, &[&grant_id.get()]).await?;
        Ok(())
    }
}
