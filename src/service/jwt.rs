//! JWT access tokens (RFC 9068), signed with Ed25519 keys kept in
//! PostgreSQL and published as a JWKS. JWTs are also stored by digest like
//! opaque tokens, so they are revocable and introspectable the same way;
//! the signature is for resource servers that verify offline.
use std::sync::RwLock;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use serde::Serialize;

use crate::domain::error::AuthError;
use crate::store::keys::SigningKeyRecord;
use crate::store::{Store, unix_seconds};

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

/// The key that signs new tokens, loaded once; the JWKS is read from the
/// database each time, so a key another replica added shows up at once.
pub struct KeyRing {
    store: Store,
    active: RwLock<ActiveKey>,
}

impl KeyRing {
    pub async fn load(store: &Store) -> Result<KeyRing, AuthError> {
        store.ensure_signing_key(&generate_key()?).await?;
        let active = newest_active(store).await?;
        Ok(KeyRing {
            store: store.clone(),
            active: RwLock::new(active),
        })
    }

    pub fn sign(&self, claims: &AccessTokenClaims<'_>) -> Result<String, AuthError> {
        let active = self.active.read().map_err(|_| AuthError::internal())?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some(active.kid.clone());
        jsonwebtoken::encode(&header, claims, &active.encoding).map_err(|e| {
            tracing::error!(error = %e, "signing a JWT failed");
            AuthError::internal()
        })
    }

    /// The JWKS (RFC 7517 section 5) of every published key.
    pub async fn jwks(&self) -> Result<serde_json::Value, AuthError> {
        let keys = self.store.signing_keys().await?;
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

async fn newest_active(store: &Store) -> Result<ActiveKey, AuthError> {
    let keys = store.signing_keys().await?;
    let key = keys
        .into_iter()
        .find(|k| k.retired_at.is_none())
        .ok_or_else(|| {
            tracing::error!("no active signing key after ensuring one");
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

fn generate_key() -> Result<SigningKeyRecord, AuthError> {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let mut kid = [0u8; 12];
    rand::rng().fill_bytes(&mut kid);
    Ok(SigningKeyRecord {
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
