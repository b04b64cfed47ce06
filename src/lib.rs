//! frontdesk: a self-service account assistant. Customers reach it by chat or
//! e-mail; it runs the "My Account" procedures as durable rhai flows.

pub mod config;
pub mod crashpoint;
pub mod engine;
pub mod store;
pub mod text;
