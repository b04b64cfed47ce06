//! SQLite's default file system (VFS) under a thin shim that writes each
//! transaction's frames of the write-ahead log with one system call instead
//! of two per frame.
//!
//! Why: SQLite writes a frame of the write-ahead log as its 24-byte header
//! and then its page (`walWriteOneFrame`, SQLite 3.46), two `pwrite`s to
//! adjacent bytes, and a commit as one frame after another. Each call costs
//! a system call, and since a frame of 4,120 bytes straddles ext4's blocks,
//! each block is looked up and dirtied once for every write that touches
//! it: twice where two frames meet. Writing the log was 31 % of the
//! writer's time (`perf record` of the writer thread, `bench engine
//! --workload recovery`, 2026-12-07), and overwriting a log with 24 bytes
//! and then 4,096 took 4.3-4.7 µs a frame against 2.1-2.8 µs for the 4,120
//! bytes at once. At 5,000 turns/s offered a commit holds one or two turns
//! and writes ~13 frames: 26 calls, each paying its own way.
//!
//! The shim holds back a run of contiguous writes to a WAL file that begins
//! with a frame's header, and writes it as one when the run ends with a
//! commit frame (a header whose "database size after commit" is not zero,
//! as the WAL format defines it), when it would grow past [`MAX_WRITE`], or
//! before the next call on that file that is anything else (a write
//! elsewhere, a read, a sync, a truncation, the size, closing). The file's
//! bytes and the order in which they reach it are the same; a failure to
//! write the run is reported by the call that ended it, at the latest the
//! commit frame's, so SQLite sees the transaction fail. Other connections
//! cannot see the difference: they read only frames of committed
//! transactions, and the commit frame's write ends the run. The writing
//! connection may read back a page it spilled before the commit; the read
//! writes the run first. Only a new frame's header (at or past the end of
//! the frames this file has written) begins a run: a checksum SQLite
//! rewrites in place after the commit frame (`walRewriteChecksums`) is the
//! transaction's last write, and held it would reach the file only with the
//! next call, after a crash of the process never. Every other file (the
//! database, its journals) is opened by the default VFS itself, with its
//! own methods and no shim in between.

use std::{
    ffi::{c_char, c_int, c_void},
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
};

use rusqlite::ffi;

/// The size of a WAL frame's header (`WAL_FRAME_HDRSIZE`).
const FRAME_HEADER: c_int = 24;

/// The default VFS the shim stands on, and the shim's WAL file methods.
struct Vfs {
    base: *mut ffi::sqlite3_vfs,
    wal_methods: ffi::sqlite3_io_methods,
}

// SAFETY: the default VFS and its methods are SQLite's, which any thread
// may call; neither pointer is written after registration.
unsafe impl Send for Vfs {}
unsafe impl Sync for Vfs {}

static VFS: OnceLock<Vfs> = OnceLock::new();

/// Most bytes one write to the default VFS may carry: its `pwrite` takes
/// at most this many (`seekAndWriteFd` masks the length with `0x1ffff`,
/// SQLite 3.46, os_unix.c; it never writes more than a page itself) and
/// reports a shorter write as a full disk. A commit bigger than this (31
/// frames of 4 KiB pages) goes down in runs of up to this size.
const MAX_WRITE: usize = 0x1ffff;

/// How many runs of more than one write went down as one.
static JOINED: AtomicU64 = AtomicU64::new(0);

/// A WAL file: the shim's methods, the default VFS's file (in the same
/// allocation, after this), the held run.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// Where the held run goes (-1: nothing is held).
    held_at: i64,
    /// The held run; its allocation is kept between runs.
    held: Vec<u8>,
    /// The last header held was a commit frame's: its page ends the run.
    commits: bool,
    /// The length of the last page held, to tell whether a frame still fits.
    page: usize,
    /// Where the log's frames end, as far as this file wrote them: a
    /// header written before it rewrites a frame's checksum (SQLite does
    /// so after the commit frame when a transaction rewrote a page it had
    /// spilled), the transaction's last write, so it is never held.
    frontier: i64,
}

/// Where the default VFS's file begins in a [`WalFile`]'s allocation.
const REAL_AT: usize = std::mem::size_of::<WalFile>().next_multiple_of(16);

/// Registers the shim as SQLite's default VFS (in front of the default it
/// had); SQLite must be initialised and configured.
pub(super) fn register() -> Result<(), c_int> {
    // SAFETY: `sqlite3_vfs_find` returns SQLite's default VFS, which lives
    // as long as the process; the shim's VFS is leaked (it must outlive
    // every connection) and registered once: by `sqlite_global::configure`
    // (itself once per process), and `VFS.set` refuses a second time.
    unsafe {
        let base = ffi::sqlite3_vfs_find(std::ptr::null());
        if base.is_null() {
            return Err(ffi::SQLITE_ERROR);
        }
        let mut vfs = *base;
        vfs.zName = c"frontdesk".as_ptr();
        vfs.szOsFile = (REAL_AT + (*base).szOsFile as usize) as c_int;
        vfs.xOpen = Some(open);
        vfs.pNext = std::ptr::null_mut();
        let wal_methods = ffi::sqlite3_io_methods {
            iVersion: 1,
            xClose: Some(close),
            xRead: Some(read),
            xWrite: Some(write),
            xTruncate: Some(truncate),
            xSync: Some(sync),
            xFileSize: Some(file_size),
            xLock: Some(lock),
            xUnlock: Some(unlock),
            xCheckReservedLock: Some(check_reserved_lock),
            xFileControl: Some(file_control),
            xSectorSize: Some(sector_size),
            xDeviceCharacteristics: Some(device_characteristics),
            xShmMap: None,
            xShmLock: None,
            xShmBarrier: None,
            xShmUnmap: None,
            xFetch: None,
            xUnfetch: None,
        };
        if VFS.set(Vfs { base, wal_methods }).is_err() {
            return Ok(());
        }
        let rc = ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 1);
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(rc)
        }
    }
}

/// How many frames went down in one write so far.
#[cfg(test)]
pub(crate) fn joined() -> u64 {
    JOINED.load(Ordering::Relaxed)
}

fn vfs() -> &'static Vfs {
    VFS.get().expect("registered before SQLite opens a file through it")
}

unsafe extern "C" fn open(
    _: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let v = vfs();
    let base_open = (*v.base).xOpen.expect("a VFS opens files");
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // Not a log: the default VFS's own file, in the allocation's start.
        return base_open(v.base, name, file, flags, out_flags);
    }
    let real = (file as *mut u8).add(REAL_AT) as *mut ffi::sqlite3_file;
    (*real).pMethods = std::ptr::null();
    let rc = base_open(v.base, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        if let Some(close) = (*real).pMethods.as_ref().and_then(|m| m.xClose) {
            close(real);
        }
        (*file).pMethods = std::ptr::null();
        return rc;
    }
    std::ptr::write(
        file as *mut WalFile,
        WalFile {
            base: ffi::sqlite3_file { pMethods: &v.wal_methods },
            real,
            held_at: -1,
            held: Vec::new(),
            commits: false,
            page: 4096,
            frontier: 0,
        },
    );
    ffi::SQLITE_OK
}

impl WalFile {
    /// The shim's state of a WAL file SQLite hands a method: one mutable
    /// borrow per call, which every helper below goes through.
    unsafe fn of<'a>(f: *mut ffi::sqlite3_file) -> &'a mut WalFile {
        &mut *(f as *mut WalFile)
    }

    /// The default VFS's file behind this one, and its methods.
    unsafe fn real(&self) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
        (self.real, &*(*self.real).pMethods)
    }

    /// Writes the held run, if any, where it was to go.
    unsafe fn flush(&mut self) -> c_int {
        if self.held_at < 0 {
            return ffi::SQLITE_OK;
        }
        let at = std::mem::replace(&mut self.held_at, -1);
        // A run begins with a frame's header: longer, it joined writes.
        if self.held.len() > FRAME_HEADER as usize {
            JOINED.fetch_add(1, Ordering::Relaxed);
        }
        self.commits = false;
        let (real, m) = self.real();
        let rc =
            m.xWrite.expect("a file writes")(real, self.held.as_ptr() as *const c_void, self.held.len() as c_int, at);
        self.held.clear();
        rc
    }

    /// Adds a write that continues the held run, or begins one at `offset`.
    fn hold(&mut self, bytes: &[u8], offset: i64) {
        if self.held_at < 0 {
            self.held_at = offset;
        }
        self.held.extend_from_slice(bytes);
    }
}

unsafe extern "C" fn write(f: *mut ffi::sqlite3_file, buf: *const c_void, amount: c_int, offset: i64) -> c_int {
    let w = WalFile::of(f);
    if amount > 0 && offset >= 0 {
        // The log's header, at 0, starts the log over: frames follow it.
        let end = offset + i64::from(amount);
        w.frontier = if offset == 0 { end } else { w.frontier.max(end) };
    }
    let mut continues = w.held_at >= 0 && w.held_at + w.held.len() as i64 == offset && amount > 0;
    // A frame (its header, then its page) that would not fit in the run
    // begins the next one.
    let room = if amount == FRAME_HEADER { FRAME_HEADER as usize + w.page } else { amount.max(0) as usize };
    if continues && w.held.len() + room > MAX_WRITE {
        continues = false;
    }
    if !continues {
        let rc = w.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        // Only a new frame's header begins a run; anything else (the log's
        // own header, a page or a checksum rewritten in place) has nothing
        // to join and goes down at once.
        if amount != FRAME_HEADER || offset < 0 || offset + i64::from(FRAME_HEADER) < w.frontier {
            let (real, m) = w.real();
            return m.xWrite.expect("a file writes")(real, buf, amount, offset);
        }
    }
    let bytes = std::slice::from_raw_parts(buf as *const u8, amount as usize);
    w.hold(bytes, offset);
    if amount == FRAME_HEADER {
        // Bytes 4-7 of a frame's header: the database's size in pages
        // after a commit, in a commit frame; zero in every other.
        w.commits = bytes[4..8] != [0, 0, 0, 0];
        return ffi::SQLITE_OK;
    }
    w.page = bytes.len();
    if w.commits {
        return w.flush();
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn close(f: *mut ffi::sqlite3_file) -> c_int {
    let w = WalFile::of(f);
    let rc = w.flush();
    let (real, m) = w.real();
    let closed = m.xClose.expect("a file closes")(real);
    std::ptr::drop_in_place(w as *mut WalFile);
    if rc != ffi::SQLITE_OK {
        rc
    } else {
        closed
    }
}

/// A method that only forwards, after writing the held run.
macro_rules! forward {
    ($name:ident, $method:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(f: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            let w = WalFile::of(f);
            let rc = w.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            let (real, m) = w.real();
            m.$method.expect(concat!("a file has ", stringify!($method)))(real, $($arg),*)
        }
    };
}

forward!(read, xRead, (buf: *mut c_void, amount: c_int, offset: i64));
forward!(truncate, xTruncate, (size: i64));
forward!(sync, xSync, (flags: c_int));
forward!(file_size, xFileSize, (size: *mut i64));
forward!(lock, xLock, (level: c_int));
forward!(unlock, xUnlock, (level: c_int));
forward!(check_reserved_lock, xCheckReservedLock, (out: *mut c_int));
forward!(file_control, xFileControl, (op: c_int, arg: *mut c_void));

unsafe extern "C" fn sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    let (real, m) = WalFile::of(f).real();
    m.xSectorSize.map_or(4096, |s| s(real))
}

unsafe extern "C" fn device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    let (real, m) = WalFile::of(f).real();
    m.xDeviceCharacteristics.map_or(0, |d| d(real))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// Each transaction's frames go down joined, and a copy of the
    /// database and its log taken while the writer still has them open (as
    /// a crash of the process leaves them) is recovered whole: SQLite's
    /// recovery stops at the first frame whose header or checksum is wrong,
    /// so a header written wrongly, at the wrong place or not yet, loses the
    /// rows after it. The last transaction spills pages past a tiny cache,
    /// then changes them again (SQLite rewrites those frames in place and
    /// their checksums after the commit frame), and its frames are more than
    /// one write may carry ([`super::MAX_WRITE`]).
    #[test]
    fn frames_are_joined_and_a_crashed_log_recovers_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::store::sqlite_global::configured_db(dir.path());
        let before = super::joined();
        let db = Connection::open(&path).unwrap();
        db.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; \
             CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT); CREATE INDEX t_body ON t (body);",
        )
        .unwrap();
        let body = |n: u64| format!("{:x}", n * 2_654_435_761u64 % 1_000_003).repeat(20);
        for batch in 0..50 {
            let tx = db.unchecked_transaction().unwrap();
            for i in 0..100 {
                tx.execute("INSERT INTO t (body) VALUES (?1)", [body(batch * 100 + i)]).unwrap();
            }
            tx.commit().unwrap();
        }
        assert!(super::joined() >= before + 50, "frames were not joined");

        db.execute_batch("PRAGMA cache_size = 16").unwrap();
        let tx = db.unchecked_transaction().unwrap();
        for i in 0..3_000 {
            tx.execute("INSERT INTO t (body) VALUES (?1)", [body(5_000 + i)]).unwrap();
        }
        tx.execute("UPDATE t SET body = 'changed' || id WHERE id > 5000 AND id % 7 = 0", []).unwrap();
        tx.commit().unwrap();

        let expect = |db: &Connection, what: &str| {
            let count: i64 = db.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
            assert_eq!(count, 8_000, "{what}");
            let changed: i64 =
                db.query_row("SELECT count(*) FROM t WHERE body LIKE 'changed%'", [], |r| r.get(0)).unwrap();
            assert_eq!(changed, (5_001..=8_000).filter(|id| id % 7 == 0).count() as i64, "{what}");
        };
        // Another connection reads what the log holds.
        let reader = Connection::open(&path).unwrap();
        expect(&reader, "read by another connection");

        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::copy(dir.path().join("t.db-wal"), dir.path().join("copy.db-wal")).unwrap();
        let recovered = Connection::open(&copy).unwrap();
        expect(&recovered, "rows lost in the log's recovery");
        let check: String = recovered.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        drop((db, reader));
    }
}
