//! SQLite's process-wide settings, made once before SQLite starts.
//!
//! SQLite takes them only before its first connection starts it
//! (`sqlite3_config` refuses afterwards), so every place this crate opens a
//! SQLite connection calls [`configure`] first: [`super::Store::open_with`]
//! and [`super::exec::SqliteConn::open`]. In a process that started SQLite
//! some other way first (a test that used rusqlite directly), SQLite keeps
//! its defaults, which are correct, only slower.
//!
//! - Allocations from mimalloc, the process's allocator (`main.rs`),
//!   instead of glibc's malloc: SQLite's writer spent 8 % of its time in
//!   glibc's malloc and free (`perf record` of the writer thread, `bench
//!   engine --workload recovery`, 2026-12-06), and glibc keeps an arena of
//!   freed memory for each thread that used SQLite.
//! - The page cache wrapper of [`super::pcache`].
//! - The VFS shim of [`super::walvfs`], as the default VFS (registered
//!   last: finding the VFS it stands on starts SQLite).
//!
//! (SQLite's compile-time settings are in `.cargo/config.toml`.)

use std::{
    ffi::{c_int, c_void},
    sync::OnceLock,
};

use libmimalloc_sys as mi;
use rusqlite::ffi;

/// Applies the settings, once per process; whether they are in place.
pub(crate) fn configure() -> bool {
    static CONFIGURED: OnceLock<bool> = OnceLock::new();
    *CONFIGURED.get_or_init(|| {
        // SAFETY: `sqlite3_config` only sets SQLite's global configuration
        // (copying the structures it is given), and refuses once SQLite has
        // started; the allocator's functions are mimalloc's, which any
        // thread may call.
        let done = unsafe { apply() };
        if let Err(rc) = done {
            // Nearly always: SQLite had started (sqlite3_config refuses then);
            // what came before the refusal stays applied, the rest default.
            tracing::debug!(rc, "SQLite's settings not all applied; it keeps its defaults for the rest");
        }
        done.is_ok()
    })
}

/// A database file `t.db` in `dir`, created through this crate's own
/// connection (which configures SQLite first), for tests of the settings:
/// fails the test if SQLite had started before it could be configured.
#[cfg(test)]
pub(crate) fn configured_db(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("t.db");
    drop(super::exec::SqliteConn::open(&file, "").expect("a SQLite database in a temp dir"));
    assert!(configure(), "SQLite started before it was configured");
    file
}

unsafe fn apply() -> Result<(), c_int> {
    let ok = |rc: c_int| if rc == ffi::SQLITE_OK { Ok(()) } else { Err(rc) };
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(malloc),
        xFree: Some(free),
        xRealloc: Some(realloc),
        xSize: Some(size),
        xRoundup: Some(roundup),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SQLite copies the methods.
    ok(ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const ffi::sqlite3_mem_methods))?;
    super::pcache::wrap()?;
    super::walvfs::register()
}

// SQLite asks for sizes as positive ints and needs 8-byte alignment, which
// mimalloc gives every block.

unsafe extern "C" fn malloc(n: c_int) -> *mut c_void {
    mi::mi_malloc(n.max(0) as usize)
}

unsafe extern "C" fn free(p: *mut c_void) {
    mi::mi_free(p)
}

unsafe extern "C" fn realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    mi::mi_realloc(p, n.max(0) as usize)
}

/// The block's usable size, as SQLite's own allocator reports
/// `malloc_usable_size`: SQLite grows strings into the slack.
unsafe extern "C" fn size(p: *mut c_void) -> c_int {
    if p.is_null() {
        0
    } else {
        mi::mi_usable_size(p).min(c_int::MAX as usize) as c_int
    }
}

unsafe extern "C" fn roundup(n: c_int) -> c_int {
    (n.max(0) as usize).next_multiple_of(8).min(c_int::MAX as usize) as c_int
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

#[cfg(test)]
mod tests {
    /// SQLite allocates through mimalloc: a block it hands out is one
    /// mimalloc knows the size of.
    #[test]
    fn sqlite_allocates_from_mimalloc() {
        let dir = tempfile::tempdir().unwrap();
        super::configured_db(dir.path());
        // SAFETY: a block of SQLite's allocator, freed by it.
        unsafe {
            let p = rusqlite::ffi::sqlite3_malloc(100);
            assert!(!p.is_null());
            assert!(libmimalloc_sys::mi_is_in_heap_region(p), "not a mimalloc block");
            assert!(rusqlite::ffi::sqlite3_msize(p) >= 100);
            rusqlite::ffi::sqlite3_free(p);
        }
    }
}
