//! Vouch: a certificate Registration Authority.
//!
//! Modules are split by trust boundary (see docs/ARCHITECTURE.md): `api` speaks HTTP, `ra` makes the
//! registration decisions, `ca` talks to the upstream CA, `x509` does DER-level work, `store` is the
//! only place that runs SQL, `audit` keeps the hash-chained log and `web` serves the console.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod audit;
pub mod ca;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod datadir;
pub mod error;
pub mod ra;
pub mod startup;
pub mod state;
pub mod store;
pub mod verify;
pub mod web;
pub mod x509;
