//! Integration tests: a real authd over gRPC on a loopback port, over a
//! real PostgreSQL, one fresh database per test.
mod accounts;
mod apps;
mod attacks;
mod authorize;
mod bench_smoke;
mod cache;
mod e2e;
mod health;
mod helpers;
mod http_apps;
mod http_authorize;
mod http_misc;
mod http_oauth;
mod introspect;
mod jwt;
mod openapi;
mod purge;
mod revoke;
mod sessions;
mod tls;
mod token;
