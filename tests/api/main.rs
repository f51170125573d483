//! Integration tests: a real authd over gRPC on a loopback port, over a
//! real PostgreSQL, one fresh database per test.
mod accounts;
mod apps;
mod authorize;
mod health;
mod helpers;
mod introspect;
mod jwt;
mod revoke;
mod sessions;
mod token;
