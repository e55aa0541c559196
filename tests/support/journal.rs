//! Read-only looks into a daemon's journal (SQLite, WAL: readers do not block the daemon).

use std::path::Path;

/// Outbox entries: (all, not delivered yet). `None` while the file cannot be read (the daemon
/// is creating it, or it is locked for a moment).
pub fn outbox_counts(journal: &Path) -> Option<(u64, u64)> {
    let db = rusqlite::Connection::open_with_flags(
        journal,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    db.busy_timeout(std::time::Duration::from_secs(2)).ok()?;
    db.query_row(
        "SELECT COUNT(*), COALESCE(SUM(state != 'delivered'), 0) FROM outbox",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .ok()
}
