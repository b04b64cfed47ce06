//! frontdesk: a self-service account assistant. Customers reach it by chat or
//! e-mail; it runs the "My Account" procedures as durable rhai flows.

pub mod account;
pub mod agent;
pub mod app;
pub mod background;
#[cfg(feature = "bench")]
pub mod bench;
pub mod builtin;
pub mod channels;
pub mod cli;
pub mod commands;
pub mod config;
pub mod crashpoint;
pub mod directory;
pub mod domain;
pub mod engine;
pub mod flowcheck;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod store;
#[cfg(feature = "bench")]
pub mod testing;
pub mod text;
pub mod transcript;
