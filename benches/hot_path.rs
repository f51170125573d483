//! Micro-benchmarks of what a warm Introspect does besides I/O: hash the
//! presented token, find it in the cache, check its scopes; and what a
//! resource server (or a cold lookup of a JWT) does: verify a signature.
//!
//!   cargo bench --bench hot_path
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authd::domain::grant::{IssuedTo, Token, TokenKind};
use authd::domain::id::{AccountId, AppId, GrantId};
use authd::domain::scope::{Scope, ScopeSet};
use authd::domain::secret::{Digest, random_token};
use authd::service::cache::{IntrospectionCache, Invalidation};
use authd::service::jwt::verify_signature;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};

fn record(grant_id: i64) -> Token {
    Token {
        kind: TokenKind::Access,
        grant_id: GrantId::new(grant_id),
        issued_to: Arc::new(IssuedTo {
            app_id: AppId::new(1),
            client_id: "bench-client-id".into(),
        }),
        account_id: AccountId::new(7),
        username: Some("alice".into()),
        account_disabled: false,
        holder_may_use_admin_scopes: false,
        scopes: ScopeSet::parse("read write:statuses").unwrap(),
        created_at: SystemTime::now().into(),
        expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
        revoked: false,
    }
}

fn digest(c: &mut Criterion) {
    let token = random_token();
    c.bench_function("digest: SHA-256 of a 43-character token", |b| {
        b.iter(|| Digest::of(black_box(&token)))
    });
}

fn scopes(c: &mut Criterion) {
    let granted = ScopeSet::parse("read write:statuses follow push").unwrap();
    c.bench_function("scope check: read:accounts within read", |b| {
        b.iter(|| black_box(&granted).satisfies(black_box(Scope::ReadAccounts)))
    });
    c.bench_function("scope parse: \"read write:statuses follow push\"", |b| {
        b.iter(|| ScopeSet::parse(black_box("read write:statuses follow push")).unwrap())
    });
}

fn cache(c: &mut Criterion) {
    let cache = IntrospectionCache::new(1_000_000);
    cache.set_synced(true);
    let tokens: Vec<Digest> = (0..100_000).map(|_| Digest::of(&random_token())).collect();
    for (i, d) in tokens.iter().enumerate() {
        cache.insert_token(cache.ticket(), *d, cache.shareable(record(i as i64)));
    }
    let now = SystemTime::now();
    let mut i = 0;
    c.bench_function("cache lookup: hit among 100,000 tokens", |b| {
        b.iter(|| {
            i = (i + 7919) % tokens.len();
            cache.token(black_box(&tokens[i]), now).unwrap()
        })
    });
    let unknown = Digest::of("not a cached token");
    c.bench_function("cache lookup: miss", |b| {
        b.iter(|| cache.token(black_box(&unknown), now))
    });
    // What one revocation of a grant costs a replica: a grant no cached
    // token holds, so the cache stays as it is. It was one pass over every
    // cached token; now a pass at most once a second for them all.
    let mut grant = 1_000_000;
    c.bench_function("cache: a grant revoked, 100,000 tokens cached", |b| {
        b.iter(|| {
            grant += 1;
            cache.invalidate(&Invalidation::Grant(GrantId::new(black_box(grant))))
        })
    });
    // An app's invalidation still visits every cached token, as a grant's
    // did before (an app no cached token belongs to).
    c.bench_function(
        "cache: an app invalidated (a pass over 100,000 tokens)",
        |b| b.iter(|| cache.invalidate(&Invalidation::App(AppId::new(black_box(999))))),
    );
    c.bench_function(
        "cache lookup: hit among 100,000 tokens, revocations pending",
        |b| {
            b.iter(|| {
                i = (i + 7919) % tokens.len();
                cache.token(black_box(&tokens[i]), now).unwrap()
            })
        },
    );
}

fn jwt(c: &mut Criterion) {
    let signing = SigningKey::from_bytes(&[7u8; 32]);
    let der = signing.to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(
        &header,
        &serde_json::json!({
            "iss": "https://authd.example", "sub": "7", "aud": "client", "client_id": "client",
            "scope": "read write:statuses", "iat": 1_800_000_000, "exp": 1_800_003_600, "jti": "abc",
        }),
        &EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap();
    let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
    let keys = HashMap::from([(
        "k1".to_owned(),
        (
            authd::domain::signing_key::SigningAlgorithm::EdDsa,
            DecodingKey::from_ed_components(&x).unwrap(),
        ),
    )]);
    c.bench_function("JWT: verify an EdDSA access token", |b| {
        b.iter(|| verify_signature(black_box(&token), &keys))
    });
}

criterion_group!(hot_path, digest, scopes, cache, jwt);
criterion_main!(hot_path);
