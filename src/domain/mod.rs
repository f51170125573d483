//! The OAuth domain: applications, accounts, scopes, redirect URIs, PKCE,
//! secrets and errors. Pure values and rules, parsed at the edge; nothing
//! here knows of gRPC, HTTP or SQL.
pub mod account;
pub mod app;
pub mod client_auth;
pub mod client_ip;
pub mod error;
pub mod password;
pub mod pkce;
pub mod redirect_uri;
pub mod request_id;
pub mod scope;
pub mod secret;
pub mod text;
