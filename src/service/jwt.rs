//! JWT access tokens (RFC 9068), signed with Ed25519 keys kept in
//! PostgreSQL and published as a JWKS. JWTs are also stored by digest like
//! opaque tokens, so they are revocable and introspectable the same way;
//! the signature is for resource servers that verify offline.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::Serialize;

use crate::domain::error::AuthError;
use crate::domain::signing_key::JwtKey;
use crate::domain::time::unix_seconds;
use crate::store::Store;

const ALGORITHM: &str = "EdDSA";

/// The claims of RFC 9068 section 2.2.
#[derive(Debug, Serialize)]
pub struct AccessTokenClaims<'a> {
    pub iss: &'a str,
    pub exp: i64,
    pub aud: &'a str,
    pub sub: &'a str,
    pub client_id: &'a str,
    pub iat: i64,
    pub jti: &'a str,
    pub scope: &'a str,
}

struct ActiveKey {
    kid: String,
    encoding: EncodingKey,
}

/// The key that signs new tokens, and the public keys that verify, kept in
/// memory; the JWKS is read from the database each time, so a key another
/// replica added shows up at once. The public keys let introspection drop
/// a forged JWT without a database lookup.
///
/// Keys change by rotation (`rotate`): every replica reloads on the
/// notification the change sends, and every `KEY_REFRESH_INTERVAL` in case
/// it missed one (see `service::keys`).
pub struct KeyRing {
    store: Store,
    /// How long a retired key still verifies and is published: the JWT
    /// lifetime plus `ROTATION_MARGIN`.
    retention: Duration,
    active: RwLock<ActiveKey>,
    verifying: RwLock<VerifyingKeys>,
}

struct VerifyingKeys {
    by_kid: Arc<HashMap<String, DecodingKey>>,
    /// When each known key was retired (None: it still signs), to tell a
    /// key that aged out from one withdrawn by hand.
    retired_at: HashMap<String, Option<SystemTime>>,
    /// When an unknown kid last made us reload; None until one does, so
    /// the first one after start-up reloads at once.
    reloaded_at: Option<Instant>,
}

/// An unknown kid reloads the public keys at most this often, so a flood of
/// made-up kids cannot turn into a flood of queries.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// How long past `retired_at + JWT lifetime` a retired key is kept: a
/// replica that missed the rotation's notification signs with the old key
/// until its next periodic reload, and the tokens it signs meanwhile must
/// verify for their whole lifetime. Also covers small clock differences.
pub const ROTATION_MARGIN: Duration = Duration::from_secs(60);

/// What a caller may see of a signing key: never the private half.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    pub kid: String,
    pub algorithm: String,
    pub created_at: SystemTime,
    /// When it stopped signing; None while it signs.
    pub retired_at: Option<SystemTime>,
    /// When it leaves the JWKS and stops verifying; None while it signs.
    pub published_until: Option<SystemTime>,
}

/// Whether a JWT's signature checks out against a published key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signature {
    Valid,
    Invalid,
    /// The kid is not (yet) known here: the keys may need reloading.
    UnknownKey,
}

/// Checks `token`'s header and signature (EdDSA only: `none`, HS* and ES*
/// are refused before any key is used) against `keys`. Claims are not
/// checked here; the database record is the authority on them.
pub fn verify_signature(token: &str, keys: &HashMap<String, DecodingKey>) -> Signature {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Signature::Invalid;
    };
    if header.alg != Algorithm::EdDSA {
        return Signature::Invalid;
    }
    let Some(key) = header.kid.as_ref().and_then(|kid| keys.get(kid)) else {
        return Signature::UnknownKey;
    };
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    match jsonwebtoken::decode::<serde_json::Value>(token, key, &validation) {
        Ok(_) => Signature::Valid,
        Err(_) => Signature::Invalid,
    }
}

/// The `jti` claim of a JWT, read without checking the signature: it only
/// says which row to look at (its selector), and the digest of the whole
/// token, compared with that row's, decides whether the token is ours.
pub fn unverified_jti(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Claims {
        jti: String,
    }
    let payload = token.split('.').nth(1)?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Claims>(&json).ok().map(|c| c.jti)
}

fn decoding_keys(keys: &[JwtKey]) -> HashMap<String, DecodingKey> {
    keys.iter()
        .filter(|k| k.algorithm == ALGORITHM)
        .map(|k| {
            (
                k.kid.clone(),
                DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&k.public_key)),
            )
        })
        .filter_map(|(kid, key)| key.ok().map(|key| (kid, key)))
        .collect()
}

fn retirements(keys: &[JwtKey]) -> HashMap<String, Option<SystemTime>> {
    keys.iter().map(|k| (k.kid.clone(), k.retired_at)).collect()
}

impl KeyRing {
    /// Creates the first signing key if the database has none (replicas
    /// starting together create one): a start-up step, run before `load`.
    pub async fn ensure_key(store: &Store) -> Result<(), AuthError> {
        store.ensure_signing_key(&generate_key()?).await?;
        Ok(())
    }

    /// Loads the keys, one of which must sign (see `ensure_key`). A
    /// retired key verifies for `jwt_lifetime` (and `ROTATION_MARGIN`)
    /// after its retirement.
    pub async fn load(store: &Store, jwt_lifetime: Duration) -> Result<KeyRing, AuthError> {
        let retention = jwt_lifetime + ROTATION_MARGIN;
        let keys = store.signing_keys(retention).await?;
        let verifying = VerifyingKeys {
            by_kid: Arc::new(decoding_keys(&keys)),
            retired_at: retirements(&keys),
            reloaded_at: None,
        };
        let active = newest_active(keys)?;
        Ok(KeyRing {
            store: store.clone(),
            retention,
            active: RwLock::new(active),
            verifying: RwLock::new(verifying),
        })
    }

    /// Whether `token` carries a valid signature of one of our keys. An
    /// unknown kid reloads the keys (at most every few seconds), since
    /// another replica may have added one. That reload only adds keys;
    /// dropping them is `reload`'s, which knows to flush the cache.
    pub async fn signature_is_valid(&self, token: &str) -> Result<bool, AuthError> {
        let (keys, reloaded_at) = {
            let v = self.verifying.read().map_err(|_| AuthError::internal())?;
            (v.by_kid.clone(), v.reloaded_at)
        };
        let may_reload = reloaded_at.is_none_or(|t| t.elapsed() >= KEY_RELOAD_INTERVAL);
        match verify_signature(token, &keys) {
            Signature::Valid => return Ok(true),
            Signature::Invalid => return Ok(false),
            Signature::UnknownKey if !may_reload => return Ok(false),
            Signature::UnknownKey => {}
        }
        let records = self.store.signing_keys(self.retention).await?;
        let keys = {
            let mut v = self.verifying.write().map_err(|_| AuthError::internal())?;
            let mut merged = (*v.by_kid).clone();
            let mut retired_at = v.retired_at.clone();
            for (kid, key) in decoding_keys(&records) {
                merged.entry(kid).or_insert(key);
            }
            for (kid, at) in retirements(&records) {
                retired_at.entry(kid).or_insert(at);
            }
            let merged = Arc::new(merged);
            *v = VerifyingKeys {
                by_kid: merged.clone(),
                retired_at,
                reloaded_at: Some(Instant::now()),
            };
            merged
        };
        Ok(verify_signature(token, &keys) == Signature::Valid)
    }

    /// Reloads the keys from the database: the newest unretired key signs
    /// from now on, and keys past their retention stop verifying. Returns
    /// true when a key stopped verifying before its time (deleted, or its
    /// retirement moved back, by an operator): tokens it signed may still
    /// sit in the introspection cache, which the caller must then flush.
    pub async fn reload(&self) -> Result<bool, AuthError> {
        let records = self.store.signing_keys(self.retention).await?;
        let now = SystemTime::now();
        let withdrawn = {
            let mut v = self.verifying.write().map_err(|_| AuthError::internal())?;
            let retention = self.retention;
            let withdrawn = v.retired_at.iter().any(|(kid, retired_at)| {
                let aged_out = retired_at.is_some_and(|at| at + retention <= now);
                !aged_out && !records.iter().any(|r| &r.kid == kid)
            });
            *v = VerifyingKeys {
                by_kid: Arc::new(decoding_keys(&records)),
                retired_at: retirements(&records),
                reloaded_at: v.reloaded_at,
            };
            withdrawn
        };
        match newest_active(records) {
            Ok(active) => {
                let mut current = self.active.write().map_err(|_| AuthError::internal())?;
                if current.kid != active.kid {
                    tracing::info!(kid = %active.kid, "signing JWTs with a new key");
                    *current = active;
                }
            }
            // Keys deleted by hand: keep signing with the key in memory
            // rather than not at all; a restart creates a new one.
            Err(e) => {
                tracing::error!(error = %e, "no signing key in the database; keeping the current one")
            }
        }
        Ok(withdrawn)
    }

    /// Retires every key and signs with a new one from now on, here at
    /// once and on the other replicas when they hear of it. Returns the new
    /// key's kid and the kids retired.
    pub async fn rotate(&self) -> Result<(String, Vec<String>), AuthError> {
        let key = generate_key()?;
        let kid = key.kid.clone();
        let retired = self.store.rotate_signing_key(&key).await?;
        self.reload().await?;
        Ok((kid, retired))
    }

    /// The keys that sign or still verify, newest first, without their
    /// private halves.
    pub async fn published(&self) -> Result<Vec<KeyInfo>, AuthError> {
        let keys = self.store.signing_keys(self.retention).await?;
        Ok(keys
            .into_iter()
            .map(|k| KeyInfo {
                published_until: k.retired_at.map(|at| at + self.retention),
                kid: k.kid,
                algorithm: k.algorithm,
                created_at: k.created_at,
                retired_at: k.retired_at,
            })
            .collect())
    }

    pub fn sign(&self, claims: &AccessTokenClaims<'_>) -> Result<String, AuthError> {
        self.sign_jwt("at+jwt", claims)
    }

    /// Signs any claims, with `typ` in the header ("JWT" for an id_token).
    pub fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, AuthError> {
        let active = self.active.read().map_err(|_| AuthError::internal())?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(typ.into());
        header.kid = Some(active.kid.clone());
        jsonwebtoken::encode(&header, claims, &active.encoding).map_err(|e| {
            tracing::error!(error = %e, "signing a JWT failed");
            AuthError::internal()
        })
    }

    /// The JWKS (RFC 7517 section 5) of every published key.
    pub async fn jwks(&self) -> Result<serde_json::Value, AuthError> {
        let keys = self.store.signing_keys(self.retention).await?;
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": k.algorithm,
                    "use": "sig",
                    "kid": k.kid,
                    "x": URL_SAFE_NO_PAD.encode(&k.public_key),
                })
            })
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }
}

fn newest_active(keys: Vec<JwtKey>) -> Result<ActiveKey, AuthError> {
    let key = keys
        .into_iter()
        .find(|k| k.retired_at.is_none())
        .ok_or_else(|| {
            tracing::error!(
                "no active signing key (was AuthService::ensure_signing_key run at start-up?)"
            );
            AuthError::internal()
        })?;
    let seed: [u8; 32] = key.private_key.as_slice().try_into().map_err(|_| {
        tracing::error!(kid = %key.kid, "malformed signing key");
        AuthError::internal()
    })?;
    let der = SigningKey::from_bytes(&seed).to_pkcs8_der().map_err(|e| {
        tracing::error!(error = %e, "encoding signing key failed");
        AuthError::internal()
    })?;
    Ok(ActiveKey {
        kid: key.kid,
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
    })
}

fn generate_key() -> Result<JwtKey, AuthError> {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let mut kid = [0u8; 12];
    rand::rng().fill_bytes(&mut kid);
    Ok(JwtKey {
        kid: URL_SAFE_NO_PAD.encode(kid),
        algorithm: ALGORITHM.into(),
        private_key: seed.to_vec(),
        public_key: public.to_vec(),
        created_at: SystemTime::now(),
        retired_at: None,
    })
}

pub(crate) fn expiry_seconds(t: SystemTime) -> i64 {
    unix_seconds(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_and_token(kid: &str) -> (HashMap<String, DecodingKey>, JwtKey, String) {
        let mut record = generate_key().unwrap();
        record.kid = kid.into();
        let der = SigningKey::from_bytes(&record.private_key.clone().try_into().unwrap())
            .to_pkcs8_der()
            .unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        let token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "1", "scope": "read"}),
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap();
        (decoding_keys(std::slice::from_ref(&record)), record, token)
    }

    #[test]
    fn our_signature_verifies_and_anything_else_does_not() {
        let (keys, record, token) = key_and_token("k1");
        assert_eq!(verify_signature(&token, &keys), Signature::Valid);

        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"1","scope":"admin:write"}"#);
        assert_eq!(
            verify_signature(&parts.join("."), &keys),
            Signature::Invalid,
            "tampered payload"
        );

        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert_eq!(
            verify_signature(&unsigned, &keys),
            Signature::Invalid,
            "alg=none"
        );

        // HS256 "signed" with the public key as the secret: key confusion.
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some("k1".into());
        let confused = jsonwebtoken::encode(
            &hs,
            &serde_json::json!({"sub": "1"}),
            &EncodingKey::from_secret(&record.public_key),
        )
        .unwrap();
        assert_eq!(
            verify_signature(&confused, &keys),
            Signature::Invalid,
            "HS256 confusion"
        );

        let (_, _, other) = key_and_token("k2");
        assert_eq!(
            verify_signature(&other, &keys),
            Signature::UnknownKey,
            "unknown kid"
        );
        let (_, _, same_kid_other_key) = key_and_token("k1");
        assert_eq!(
            verify_signature(&same_kid_other_key, &keys),
            Signature::Invalid,
            "wrong key for the kid"
        );
        assert_eq!(verify_signature("a.b.c", &keys), Signature::Invalid);
    }

    #[test]
    fn the_jti_is_read_from_the_payload_and_anything_malformed_has_none() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"1","jti":"abc"}"#);
        assert_eq!(
            unverified_jti(&format!("h.{payload}.s")).as_deref(),
            Some("abc")
        );
        let no_jti = URL_SAFE_NO_PAD.encode(br#"{"sub":"1"}"#);
        assert_eq!(unverified_jti(&format!("h.{no_jti}.s")), None);
        assert_eq!(unverified_jti("h.!!!.s"), None);
        assert_eq!(unverified_jti("no-dots"), None);
    }
}
