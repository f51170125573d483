//! authd: an OAuth 2.0 authorization service. The domain (`domain`) knows
//! nothing of transports or SQL; `store` is the only place SQL lives;
//! `service` holds the operations; `grpc` adapts them to the wire.
pub mod cli;
pub mod config;
pub mod connections;
pub mod deadline;
pub mod domain;
pub mod embedded_postgres;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod proto;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
