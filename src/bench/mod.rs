//! Benchmarks that print their figures and measure their floor in the same run.

pub mod directory;
pub mod email;
mod engine;

pub use engine::{engine, EngineBenchArgs};
