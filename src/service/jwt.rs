//! JWT access tokens (RFC 9068) and id_tokens, signed with keys kept in
//! PostgreSQL (one active key per algorithm: EdDSA, RS256, ES256), their
//! private halves sealed under the operator's key-encryption key, and
//! published as a JWKS. JWT access tokens are also stored by digest like
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

use super::key_encryption::{self, KeyEncryptionKey};
use crate::domain::error::{AuthError, ErrorKind};
use crate::domain::signing_key::{JwtKey, SigningAlgorithm};
use crate::domain::time::unix_seconds;
use crate::store::Store;

/// What signs JWT access tokens when the app registered no algorithm:
/// EdDSA, as before there was a choice.
pub const DEFAULT_ACCESS_TOKEN_ALGORITHM: SigningAlgorithm = SigningAlgorithm::EdDsa;

fn jose(algorithm: SigningAlgorithm) -> Algorithm {
    match algorithm {
        SigningAlgorithm::EdDsa => Algorithm::EdDSA,
        SigningAlgorithm::Rs256 => Algorithm::RS256,
        SigningAlgorithm::Es256 => Algorithm::ES256,
    }
}

/// The associated data a key's private half is sealed with: its kid and
/// algorithm, so that a sealed key copied to another row does not open.
fn seal_context(kid: &str, algorithm: SigningAlgorithm) -> Vec<u8> {
    [kid.as_bytes(), b"\0", algorithm.as_str().as_bytes()].concat()
}

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

type ActiveKeys = HashMap<SigningAlgorithm, ActiveKey>;

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
    kek: KeyEncryptionKey,
    /// How long a retired key still verifies and is published: the JWT
    /// lifetime plus `ROTATION_MARGIN`.
    retention: Duration,
    active: RwLock<ActiveKeys>,
    verifying: RwLock<VerifyingKeys>,
}

/// A public key with the one algorithm it verifies.
pub type PublicKeys = HashMap<String, (SigningAlgorithm, DecodingKey)>;

struct VerifyingKeys {
    by_kid: Arc<PublicKeys>,
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
    pub algorithm: SigningAlgorithm,
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

/// Checks `token`'s header and signature against `keys`: the kid's key,
/// with the one algorithm that key is for (`none`, HS* and a header naming
/// another algorithm than the key's are refused before any key is used).
/// Claims are not checked here; the database record is the authority on
/// them.
pub fn verify_signature(token: &str, keys: &PublicKeys) -> Signature {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Signature::Invalid;
    };
    if !matches!(
        header.alg,
        Algorithm::EdDSA | Algorithm::RS256 | Algorithm::ES256
    ) {
        return Signature::Invalid;
    }
    let Some((algorithm, key)) = header.kid.as_ref().and_then(|kid| keys.get(kid)) else {
        return Signature::UnknownKey;
    };
    if header.alg != jose(*algorithm) {
        return Signature::Invalid;
    }
    let mut validation = Validation::new(header.alg);
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

/// The JWK members of a public key (RFC 7518 section 6, RFC 8037).
fn public_jwk(key: &JwtKey) -> Option<serde_json::Value> {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    Some(match key.algorithm {
        SigningAlgorithm::EdDsa => serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": b64(&key.public_key),
        }),
        SigningAlgorithm::Rs256 => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::traits::PublicKeyParts;
            let public = rsa::RsaPublicKey::from_pkcs1_der(&key.public_key).ok()?;
            serde_json::json!({
                "kty": "RSA",
                "n": b64(&public.n().to_bytes_be()),
                "e": b64(&public.e().to_bytes_be()),
            })
        }
        SigningAlgorithm::Es256 => {
            // The SEC1 uncompressed point: 0x04, x, y.
            if key.public_key.len() != 65 || key.public_key[0] != 4 {
                return None;
            }
            serde_json::json!({
                "kty": "EC", "crv": "P-256",
                "x": b64(&key.public_key[1..33]), "y": b64(&key.public_key[33..]),
            })
        }
    })
}

fn decoding_key(key: &JwtKey) -> Option<DecodingKey> {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    match key.algorithm {
        SigningAlgorithm::EdDsa => DecodingKey::from_ed_components(&b64(&key.public_key)).ok(),
        SigningAlgorithm::Rs256 => Some(DecodingKey::from_rsa_der(&key.public_key)),
        SigningAlgorithm::Es256 => {
            let jwk = public_jwk(key)?;
            DecodingKey::from_ec_components(jwk["x"].as_str()?, jwk["y"].as_str()?).ok()
        }
    }
}

fn decoding_keys(keys: &[JwtKey]) -> PublicKeys {
    keys.iter()
        .filter_map(|k| Some((k.kid.clone(), (k.algorithm, decoding_key(k)?))))
        .collect()
}

fn retirements(keys: &[JwtKey]) -> HashMap<String, Option<SystemTime>> {
    keys.iter().map(|k| (k.kid.clone(), k.retired_at)).collect()
}

impl KeyRing {
    /// A start-up step, run before `load`: seals under `kek` any private
    /// key still kept in the clear (from before keys were sealed), and
    /// creates a key for each algorithm that has none (replicas starting
    /// together create one each).
    pub async fn ensure_keys(store: &Store, kek: &KeyEncryptionKey) -> Result<(), AuthError> {
        for key in store.signing_keys(Duration::ZERO).await? {
            if key.retired_at.is_some()
                || key.private_key.is_empty()
                || key_encryption::is_sealed(&key.private_key)
            {
                continue;
            }
            let der = private_der(&key, kek)?;
            let sealed = kek.seal(&der, &seal_context(&key.kid, key.algorithm));
            store
                .reseal_signing_key(&key.kid, &key.private_key, &sealed)
                .await?;
            tracing::info!(kid = %key.kid, "sealed a signing key kept in the clear under the key-encryption key");
        }
        let active = store.active_signing_algorithms().await?;
        let missing: Vec<SigningAlgorithm> = SigningAlgorithm::ALL
            .iter()
            .copied()
            .filter(|a| !active.contains(a))
            .collect();
        if !missing.is_empty() {
            let keys = generate_keys(&missing, kek).await?;
            store.ensure_signing_keys(&keys).await?;
        }
        Ok(())
    }

    /// Loads the keys, one of each algorithm signing (see `ensure_keys`),
    /// their private halves opened with `kek`. A retired key verifies for
    /// `jwt_lifetime` (and `ROTATION_MARGIN`) after its retirement.
    pub async fn load(
        store: &Store,
        jwt_lifetime: Duration,
        kek: &KeyEncryptionKey,
    ) -> Result<KeyRing, AuthError> {
        let retention = jwt_lifetime + ROTATION_MARGIN;
        let keys = store.signing_keys(retention).await?;
        let verifying = VerifyingKeys {
            by_kid: Arc::new(decoding_keys(&keys)),
            retired_at: retirements(&keys),
            reloaded_at: None,
        };
        let active = newest_active(&keys, kek)?;
        Ok(KeyRing {
            store: store.clone(),
            kek: kek.clone(),
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
        match newest_active(&records, &self.kek) {
            Ok(active) => {
                let mut current = self.active.write().map_err(|_| AuthError::internal())?;
                for (algorithm, key) in &active {
                    if current.get(algorithm).is_none_or(|c| c.kid != key.kid) {
                        tracing::info!(kid = %key.kid, algorithm = algorithm.as_str(), "signing JWTs with a new key");
                    }
                }
                *current = active;
            }
            // Keys deleted by hand: keep signing with the key in memory
            // rather than not at all; a restart creates a new one.
            Err(e) => {
                tracing::error!(error = %e, "no signing key in the database; keeping the current one")
            }
        }
        Ok(withdrawn)
    }

    /// Retires every key and signs with new ones (one per algorithm) from
    /// now on, here at once and on the other replicas when they hear of
    /// it. Returns the new keys' kids and the kids retired.
    pub async fn rotate(&self) -> Result<(Vec<String>, Vec<String>), AuthError> {
        let keys = generate_keys(SigningAlgorithm::ALL, &self.kek).await?;
        let kids = keys.iter().map(|k| k.kid.clone()).collect();
        let retired = self.store.rotate_signing_keys(&keys).await?;
        self.reload().await?;
        Ok((kids, retired))
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

    /// Signs a JWT access token (`typ` at+jwt, RFC 9068 section 2.1).
    pub fn sign(
        &self,
        algorithm: SigningAlgorithm,
        claims: &AccessTokenClaims<'_>,
    ) -> Result<String, AuthError> {
        self.sign_jwt(algorithm, "at+jwt", claims)
    }

    /// Signs any claims with `algorithm`'s active key, with `typ` in the
    /// header ("JWT" for an id_token).
    pub fn sign_jwt<T: Serialize>(
        &self,
        algorithm: SigningAlgorithm,
        typ: &str,
        claims: &T,
    ) -> Result<String, AuthError> {
        let active = self.active.read().map_err(|_| AuthError::internal())?;
        let active = active.get(&algorithm).ok_or_else(|| {
            tracing::error!(
                algorithm = algorithm.as_str(),
                "no active signing key for the algorithm"
            );
            AuthError::internal()
        })?;
        let mut header = Header::new(jose(algorithm));
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
            .filter_map(|k| {
                let mut jwk = public_jwk(k)?;
                let members = jwk.as_object_mut()?;
                members.insert("alg".into(), k.algorithm.as_str().into());
                members.insert("use".into(), "sig".into());
                members.insert("kid".into(), k.kid.clone().into());
                Some(jwk)
            })
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }
}

/// The private key's DER (PKCS#8 for EdDSA and ES256, PKCS#1 for RS256,
/// what jsonwebtoken reads), opened with `kek`; a legacy plaintext Ed25519
/// seed is read as it is.
fn private_der(key: &JwtKey, kek: &KeyEncryptionKey) -> Result<Vec<u8>, AuthError> {
    if key_encryption::is_sealed(&key.private_key) {
        return kek
            .open(&key.private_key, &seal_context(&key.kid, key.algorithm))
            .map_err(|_| {
                AuthError::new(
                    ErrorKind::Internal,
                    format!(
                        "signing key {} does not open under this key-encryption key: start authd with the key it was sealed with (--key-encryption-key-file or AUTHD_KEY_ENCRYPTION_KEY), the one every replica uses",
                        key.kid
                    ),
                )
            });
    }
    let seed: [u8; 32] = match (key.algorithm, key.private_key.as_slice().try_into()) {
        (SigningAlgorithm::EdDsa, Ok(seed)) => seed,
        _ => {
            tracing::error!(kid = %key.kid, "malformed signing key");
            return Err(AuthError::internal());
        }
    };
    SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .map(|der| der.as_bytes().to_vec())
        .map_err(|e| {
            tracing::error!(error = %e, "encoding signing key failed");
            AuthError::internal()
        })
}

fn encoding_key(algorithm: SigningAlgorithm, der: &[u8]) -> EncodingKey {
    match algorithm {
        SigningAlgorithm::EdDsa => EncodingKey::from_ed_der(der),
        SigningAlgorithm::Rs256 => EncodingKey::from_rsa_der(der),
        SigningAlgorithm::Es256 => EncodingKey::from_ec_der(der),
    }
}

/// The newest unretired key of each algorithm, opened.
fn newest_active(keys: &[JwtKey], kek: &KeyEncryptionKey) -> Result<ActiveKeys, AuthError> {
    let mut active = ActiveKeys::new();
    // Newest first: the first of each algorithm wins.
    for key in keys.iter().filter(|k| k.retired_at.is_none()) {
        if active.contains_key(&key.algorithm) {
            continue;
        }
        let der = private_der(key, kek)?;
        active.insert(
            key.algorithm,
            ActiveKey {
                kid: key.kid.clone(),
                encoding: encoding_key(key.algorithm, &der),
            },
        );
    }
    if active.is_empty() {
        tracing::error!(
            "no active signing key (was AuthService::ensure_signing_key run at start-up?)"
        );
        return Err(AuthError::internal());
    }
    Ok(active)
}

/// New keys, sealed under `kek`; made off the async runtime, since an RSA
/// key takes a while.
async fn generate_keys(
    algorithms: &[SigningAlgorithm],
    kek: &KeyEncryptionKey,
) -> Result<Vec<JwtKey>, AuthError> {
    let algorithms = algorithms.to_vec();
    let kek = kek.clone();
    tokio::task::spawn_blocking(move || {
        algorithms
            .into_iter()
            .map(|a| generate_key(a, &kek))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "generating signing keys failed");
        AuthError::internal()
    })?
}

fn generate_key(algorithm: SigningAlgorithm, kek: &KeyEncryptionKey) -> Result<JwtKey, AuthError> {
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, algorithm = algorithm.as_str(), "generating a signing key failed");
        AuthError::internal()
    };
    let (private_der, public_key) = match algorithm {
        SigningAlgorithm::EdDsa => {
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            let key = SigningKey::from_bytes(&seed);
            let der = key.to_pkcs8_der().map_err(|e| failed(&e))?;
            (
                der.as_bytes().to_vec(),
                key.verifying_key().to_bytes().to_vec(),
            )
        }
        SigningAlgorithm::Rs256 => {
            use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
            let key =
                rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).map_err(|e| failed(&e))?;
            let der = key.to_pkcs1_der().map_err(|e| failed(&e))?;
            let public = key.to_public_key().to_pkcs1_der().map_err(|e| failed(&e))?;
            (der.as_bytes().to_vec(), public.as_bytes().to_vec())
        }
        SigningAlgorithm::Es256 => {
            use p256::pkcs8::EncodePrivateKey as _;
            let key = p256::ecdsa::SigningKey::random(&mut rand_core_06::OsRng);
            let der = key.to_pkcs8_der().map_err(|e| failed(&e))?;
            let point = key.verifying_key().to_encoded_point(false);
            (der.as_bytes().to_vec(), point.as_bytes().to_vec())
        }
    };
    let mut kid = [0u8; 12];
    rand::rng().fill_bytes(&mut kid);
    let kid = URL_SAFE_NO_PAD.encode(kid);
    Ok(JwtKey {
        private_key: kek.seal(&private_der, &seal_context(&kid, algorithm)),
        kid,
        algorithm,
        public_key,
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

    /// A key of `algorithm` under `kid`, its public keys, and a token it
    /// signed.
    fn key_and_token(algorithm: SigningAlgorithm, kid: &str) -> (PublicKeys, JwtKey, String) {
        let kek = KeyEncryptionKey::generate();
        let mut record = generate_key(algorithm, &kek).unwrap();
        // The kid is part of the sealed key's context: reseal under the new one.
        let der = private_der(&record, &kek).unwrap();
        record.kid = kid.into();
        record.private_key = kek.seal(&der, &seal_context(kid, algorithm));
        let mut header = Header::new(jose(algorithm));
        header.kid = Some(kid.into());
        let token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "1", "scope": "read"}),
            &encoding_key(algorithm, &der),
        )
        .unwrap();
        (decoding_keys(std::slice::from_ref(&record)), record, token)
    }

    #[test]
    fn our_signature_verifies_and_anything_else_does_not() {
        for &algorithm in SigningAlgorithm::ALL {
            let (keys, record, token) = key_and_token(algorithm, "k1");
            assert_eq!(
                verify_signature(&token, &keys),
                Signature::Valid,
                "{algorithm:?}"
            );

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

            // Another algorithm's token under this kid: refused before its
            // signature is even looked at.
            for &other in SigningAlgorithm::ALL.iter().filter(|&&a| a != algorithm) {
                let (_, _, foreign) = key_and_token(other, "k1");
                assert_eq!(
                    verify_signature(&foreign, &keys),
                    Signature::Invalid,
                    "{other:?} under a {algorithm:?} kid"
                );
            }

            let (_, _, other) = key_and_token(algorithm, "k2");
            assert_eq!(
                verify_signature(&other, &keys),
                Signature::UnknownKey,
                "unknown kid"
            );
            let (_, _, same_kid_other_key) = key_and_token(algorithm, "k1");
            assert_eq!(
                verify_signature(&same_kid_other_key, &keys),
                Signature::Invalid,
                "wrong key for the kid"
            );
        }
        assert_eq!(
            verify_signature("a.b.c", &PublicKeys::new()),
            Signature::Invalid
        );
    }

    #[test]
    fn every_key_is_published_with_its_algorithms_members() {
        let kek = KeyEncryptionKey::generate();
        for (algorithm, kty, members) in [
            (SigningAlgorithm::EdDsa, "OKP", &["crv", "x"][..]),
            (SigningAlgorithm::Rs256, "RSA", &["n", "e"][..]),
            (SigningAlgorithm::Es256, "EC", &["crv", "x", "y"][..]),
        ] {
            let key = generate_key(algorithm, &kek).unwrap();
            let jwk = public_jwk(&key).unwrap();
            assert_eq!(jwk["kty"], kty);
            for member in members {
                assert!(jwk.get(member).is_some(), "{algorithm:?}: {member}");
            }
            assert!(key_encryption::is_sealed(&key.private_key));
            let opened = private_der(&key, &kek).unwrap();
            assert!(
                !key.private_key
                    .windows(16)
                    .any(|w| opened.windows(16).any(|o| o == w)),
                "the stored key does not hold its DER"
            );
            let other = KeyEncryptionKey::generate();
            let error = private_der(&key, &other).unwrap_err();
            assert!(error.description.contains(&key.kid));
            assert!(error.description.contains("--key-encryption-key-file"));
        }
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
