//! The session database's schema and files: numbered migrations applied at open in a transaction, WAL,
//! the checks that refuse a damaged or newer database with a message saying what to do, retention, and
//! closing the connections a crash left open.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// Migrations, in order; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_waiting_room.sql"),
    include_str!("../../migrations/0003_lesson_marks.sql"),
];

/// The schema version this build writes.
pub fn schema_version() -> u32 {
    MIGRATIONS.len() as u32
}

fn pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

pub(crate) fn explain(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.to_path_buf(),
        message: format!(
            "the session database cannot be used ({e}). If it is damaged, move it aside (for example \
             `mv {p} {p}.broken`) and start again: a new, empty log is created and the lessons in the old \
             file stay readable with sqlite3.",
            p = path.display()
        ),
    }
}

/// Opens (creating if needed) and migrates the database for writing; refuses a newer schema.
pub fn open_for_writing(path: &Path) -> Result<Connection> {
    // Readable by the server's user only, an existing database too: it holds the join code, device
    // ids, names and addresses. SQLite gives its -wal and -shm files the database's mode.
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let (wal, shm) = (beside("-wal"), beside("-shm"));
    let private = || {
        crate::files::private_files(&[path, &wal, &shm]).map_err(|e| Error::File {
            path: path.to_path_buf(),
            message: format!("cannot make the session database private (mode 0600): {e}"),
        })
    };
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).map_err(|e| explain(path, e))?;
    }
    private()?;
    let conn = Connection::open(path).map_err(|e| explain(path, e))?;
    pragmas(&conn).map_err(|e| explain(path, e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| explain(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "WAL is not available for the session database");
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(|e| explain(path, e))?;
    let check: String =
        conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| explain(path, e))?;
    if check != "ok" {
        return Err(explain(path, format!("integrity check: {check}")));
    }
    migrate(&conn, path)?;
    private()?;
    Ok(conn)
}

/// Opens the database read-only (reports; works while a server writes).
pub fn open_for_reading(path: &Path) -> Result<Connection> {
    if !path.exists() {
        return Err(Error::File {
            path: path.into(),
            message: "no session database here yet; run `lectern serve` first".into(),
        });
    }
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| explain(path, e))?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(|e| explain(path, e))?;
    let version: u32 =
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| explain(path, e))?;
    if version > schema_version() {
        return Err(newer(path, version));
    }
    Ok(conn)
}

fn newer(path: &Path, version: u32) -> Error {
    Error::File {
        path: path.into(),
        message: format!(
            "this session database has schema {version}, written by a newer Lectern; this one knows schema {}. \
             Upgrade Lectern, or use another --data-dir.",
            schema_version()
        ),
    }
}

/// Applies the migrations this database lacks, each in its own transaction; refuses a newer schema.
fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    let sql = |e| explain(path, e);
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
    if version > schema_version() {
        return Err(newer(path, version));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction().map_err(sql)?;
        tx.execute_batch(migration).map_err(sql)?;
        tx.pragma_update(None, "user_version", i + 1).map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(())
}

/// A failed read or write of the session log, as the library's error.
pub(crate) fn sql(e: rusqlite::Error) -> Error {
    Error::Log(e.to_string())
}

/// Deletes lessons that ended more than `days` ago (and everything they logged). Returns how many.
pub fn prune(conn: &Connection, days: u32) -> Result<usize> {
    let cutoff = crate::now_ms().saturating_sub(u64::from(days) * 86_400_000);
    conn.execute("DELETE FROM lessons WHERE ended_ms IS NOT NULL AND ended_ms < ?1", [cutoff as i64])
        .map_err(sql)
}

/// Closes connections left open by a server that stopped without saying so (a crash), at the time of the
/// lesson's last logged event, so attendance does not count the time the server was down.
pub(crate) fn close_dangling(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE connections SET left_ms = max(joined_ms, coalesce(
            (SELECT max(time_ms) FROM patches p WHERE p.lesson = connections.lesson),
            (SELECT max(time_ms) FROM pointer q WHERE q.lesson = connections.lesson), joined_ms))
         WHERE left_ms IS NULL",
        [],
    )
}

/// What a failed write means, in words a teacher or a school's IT person can act on.
pub(crate) fn reason(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DiskFull) => "the disk is full".into(),
        // SQLite reports some out-of-space writes (of the WAL, say) as plain I/O errors.
        Some(C::SystemIoFailure) => format!("disk I/O error; is the disk full or removed? ({e})"),
        Some(C::ReadOnly) => "the disk or file is read-only".into(),
        Some(C::DatabaseBusy | C::DatabaseLocked) => "the database is locked by another program".into(),
        Some(C::CannotOpen) => format!("the database file cannot be opened ({e})"),
        _ => e.to_string(),
    }
}

/// A transaction whose BEGIN and COMMIT are cached statements, so a commit parses no SQL (rusqlite's
/// own transaction prepares both every time). Rolls back when dropped uncommitted.
pub(crate) struct Tx<'c> {
    conn: &'c Connection,
    done: bool,
}

impl<'c> Tx<'c> {
    pub(crate) fn begin(conn: &'c Connection) -> rusqlite::Result<Tx<'c>> {
        conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(Tx { conn, done: false })
    }

    pub(crate) fn commit(mut self) -> rusqlite::Result<()> {
        self.done = true;
        let result = self.conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([]));
        if result.is_err() {
            // A failed COMMIT can leave the transaction open (SQLITE_BUSY): do not leave it so.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result.map(|_| ())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([]));
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}
