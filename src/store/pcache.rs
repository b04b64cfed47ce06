//! SQLite's own page cache, behind a thin wrapper that keeps a B-tree
//! balance from costing the next commit a walk over the whole cache.
//!
//! Why: when `balance_nonroot` (SQLite 3.46, btree.c) puts the new sibling
//! pages of a split in page-number order, it swaps two pages' numbers
//! through a spare one, the page of the locking byte (`PENDING_BYTE /
//! page_size + 1`, 262,145 at 4 KiB pages), which no database page ever has.
//! The default cache (pcache1) remembers the largest key it has seen, and
//! every commit ends by dropping the pages past the database's end
//! (`pager_end_transaction` → `pcache1Truncate`), which walks only the
//! hash slots past the end, unless the largest key is more than a hash
//! table's length past it, when it walks every slot and every page. After
//! any swap the largest key is 262,145, so below 1 GiB of database every
//! commit that split a page walked the writer's whole cache: 9 % of the
//! writer's time in `pcache1TruncateUnsafe` (`perf record` of the writer
//! thread, `bench engine --workload recovery`, 2026-12-06).
//!
//! The wrapper hands the spare page number to pcache1 as key 0, which no
//! page has either, so pcache1 never sees it as its largest key. Every
//! other call goes through unchanged. The spare number is held only between
//! two lines of one balance (the page moves to it and straight off it), so
//! key 0 is never left in the cache.

use std::{
    ffi::{c_int, c_uint, c_void},
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
};

use rusqlite::ffi;

/// The first byte SQLite locks in a database file (`sqlite3PendingByte`,
/// which only SQLite's test builds change).
const PENDING_BYTE: c_int = 0x4000_0000;

/// The default cache's methods, which the wrapper's call.
struct Default(ffi::sqlite3_pcache_methods2);

// SAFETY: the methods are SQLite's pcache1 functions and its `pArg`, which
// SQLite itself calls from any thread (pcache1 locks what it shares).
unsafe impl Send for Default {}
unsafe impl Sync for Default {}

static DEFAULT: OnceLock<Default> = OnceLock::new();

/// How many page numbers the wrapper has handed to pcache1 as key 0 (each
/// swap of a balance counts twice: the move to it and the move off it).
static SWAPS: AtomicU64 = AtomicU64::new(0);

/// One cache: pcache1's, and the spare page number of its page size.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    spare: c_uint,
}

fn default() -> &'static ffi::sqlite3_pcache_methods2 {
    &DEFAULT.get().expect("installed before any cache is created").0
}

fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a Cache {
    // SAFETY: every cache SQLite hands back is one `create` made.
    unsafe { &*(p as *const Cache) }
}

impl Cache {
    fn key(&self, key: c_uint) -> c_uint {
        if key == self.spare {
            SWAPS.fetch_add(1, Ordering::Relaxed);
            0
        } else {
            key
        }
    }
}

/// Page numbers handed to pcache1 as key 0 so far.
#[cfg(test)]
fn swaps() -> u64 {
    SWAPS.load(Ordering::Relaxed)
}

/// Puts the wrapper in place of SQLite's page cache. Only before SQLite
/// starts ([`super::sqlite_global`]); SQLite's answer otherwise.
pub(super) unsafe fn wrap() -> Result<(), c_int> {
    let mut methods = std::mem::MaybeUninit::<ffi::sqlite3_pcache_methods2>::zeroed();
    let rc = ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, methods.as_mut_ptr());
    if rc != ffi::SQLITE_OK {
        return Err(rc);
    }
    let methods = methods.assume_init();
    if methods.xCreate.is_none() || methods.xFetch.is_none() || methods.xRekey.is_none() {
        return Err(ffi::SQLITE_MISUSE);
    }
    let _ = DEFAULT.set(Default(methods));
    let wrapper = ffi::sqlite3_pcache_methods2 {
        iVersion: 1,
        pArg: std::ptr::null_mut(),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        xCreate: Some(create),
        xCachesize: Some(cachesize),
        xPagecount: Some(pagecount),
        xFetch: Some(fetch),
        xUnpin: Some(unpin),
        xRekey: Some(rekey),
        xTruncate: Some(truncate),
        xDestroy: Some(destroy),
        xShrink: Some(shrink),
    };
    // SQLite copies the methods.
    match ffi::sqlite3_config(ffi::SQLITE_CONFIG_PCACHE2, &wrapper as *const ffi::sqlite3_pcache_methods2) {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(rc),
    }
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    match default().xInit {
        Some(f) => f(default().pArg),
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn shutdown(_: *mut c_void) {
    if let Some(f) = default().xShutdown {
        f(default().pArg)
    }
}

unsafe extern "C" fn create(page_size: c_int, extra: c_int, purgeable: c_int) -> *mut ffi::sqlite3_pcache {
    let inner = default().xCreate.expect("checked at install")(page_size, extra, purgeable);
    if inner.is_null() {
        return inner;
    }
    let spare = (PENDING_BYTE / page_size.max(1)) as c_uint + 1;
    Box::into_raw(Box::new(Cache { inner, spare })) as *mut ffi::sqlite3_pcache
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, n: c_int) {
    if let Some(f) = default().xCachesize {
        f(cache(p).inner, n)
    }
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    match default().xPagecount {
        Some(f) => f(cache(p).inner),
        None => 0,
    }
}

unsafe extern "C" fn fetch(p: *mut ffi::sqlite3_pcache, key: c_uint, create: c_int) -> *mut ffi::sqlite3_pcache_page {
    let c = cache(p);
    default().xFetch.expect("checked at install")(c.inner, c.key(key), create)
}

unsafe extern "C" fn unpin(p: *mut ffi::sqlite3_pcache, page: *mut ffi::sqlite3_pcache_page, discard: c_int) {
    if let Some(f) = default().xUnpin {
        f(cache(p).inner, page, discard)
    }
}

unsafe extern "C" fn rekey(p: *mut ffi::sqlite3_pcache, page: *mut ffi::sqlite3_pcache_page, old: c_uint, new: c_uint) {
    let c = cache(p);
    default().xRekey.expect("checked at install")(c.inner, page, c.key(old), c.key(new))
}

unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    if let Some(f) = default().xTruncate {
        f(cache(p).inner, limit)
    }
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    let c = Box::from_raw(p as *mut Cache);
    if let Some(f) = default().xDestroy {
        f(c.inner)
    }
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    if let Some(f) = default().xShrink {
        f(cache(p).inner)
    }
}

#[cfg(test)]
mod tests {
    /// Random inserts into an index split its pages, and the balances swap
    /// page numbers through the spare one: the wrapper sees them, and the
    /// database SQLite wrote through it is sound and holds every row.
    /// (Every connection of this crate configures SQLite before it starts,
    /// so the wrapper is in place whichever test opened one first.)
    #[test]
    fn balances_swap_through_key_zero_and_the_database_stays_sound() {
        let dir = tempfile::tempdir().unwrap();
        let file = crate::store::sqlite_global::configured_db(dir.path());
        let before = super::swaps();
        let db = rusqlite::Connection::open(&file).unwrap();
        db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA cache_size = -256;").unwrap();
        db.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT); CREATE INDEX t_k ON t (k);").unwrap();
        for batch in 0..40 {
            db.execute_batch("BEGIN").unwrap();
            for i in 0..500 {
                let k = format!("{:016x}", rand::random::<u64>());
                db.execute("INSERT INTO t (id, k) VALUES (?1, ?2)", rusqlite::params![batch * 500 + i, k]).unwrap();
            }
            db.execute_batch("COMMIT").unwrap();
        }
        assert!(super::swaps() > before, "no balance swapped page numbers through the spare one");
        let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        let rows: i64 = db.query_row("SELECT COUNT(*) FROM t INDEXED BY t_k WHERE k > ''", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 20_000);
    }
}
