//! Benchmarks that print their figures and measure their floor in the same run.

pub mod directory;
pub mod email;
mod engine;
mod paced;
mod recovery;
mod threads;

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

/// CPU time this process has used so far (user and system, every
/// thread), from getrusage: what a phase costs the machine. It varies far
/// less than a latency with the machine's other load, though a slowed VM
/// raises it too (each instruction takes longer when the host is busy).
pub fn cpu_time() -> std::time::Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix(field))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some((kb / 1024.0).round())
}
