//! The OAuth domain: the entities (apps, accounts, grants with their codes
//! and tokens, signing keys) with typed ids, and the values they are made
//! of (scopes, redirect URIs, PKCE, secrets) and errors. Pure values and
//! rules, parsed at the edge; nothing here knows of gRPC, HTTP or SQL.
pub mod account;
pub mod app;
pub mod client_auth;
pub mod client_ip;
pub mod client_metadata;
pub mod error;
pub mod grant;
pub mod id;
pub mod oidc;
pub mod password;
pub mod pkce;
pub mod policy;
pub mod redirect_uri;
pub mod request_id;
pub mod scope;
pub mod secret;
pub mod session;
pub mod signing_key;
pub mod text;
pub mod time;
