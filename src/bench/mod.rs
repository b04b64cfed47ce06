//! Benchmarks that print their figures and measure their floor in the same run.

pub mod directory;
pub mod email;
mod engine;
mod paced;
mod recovery;

pub use engine::{engine, engine_settings, EngineBenchArgs};

/// This process's peak resident memory so far, in MB (the kernel's
/// high-water mark, `VmHWM`; the same figure getrusage's `ru_maxrss` gives).
pub fn peak_rss_mb() -> Option<f64> {
    status_mb("VmHWM:")
}

/// This process's resident memory now, in MB (`VmRSS`), for the progress
/// lines that say which phase holds it.
pub fn rss_mb() -> Option<f64> {
    status_mb("VmRSS:")
}

fn status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix(field))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some((kb / 1024.0).round())
}
