//! Channel adapters. Each turns its platform's events into
//! [`crate::engine::Inbound`] and renders [`crate::engine::Outbound`] for its
//! platform; the engine knows none of them.

pub mod discord;
pub mod email;
pub mod terminal;
