//! Integration tests: a real authd over gRPC on a loopback port, over a
//! real PostgreSQL, one fresh database per test.
mod accounts;
mod admin;
mod admin_cli;
mod apps;
mod attacks;
mod authorize;
mod bench_smoke;
mod cache;
#[path = "../common/mod.rs"]
mod common;
mod e2e;
mod ext_authz;
mod health;
mod helpers;
mod http_apps;
mod http_authorize;
mod http_misc;
mod http_oauth;
mod http_register;
mod introspect;
mod jwt;
mod metrics;
mod oidc;
mod oidc_negative;
mod oidc_rp;
mod openapi;
mod purge;
mod readme;
mod revoke;
mod sessions;
mod signing_keys;
mod telemetry;
mod tls;
mod token;
mod token_selectors;
