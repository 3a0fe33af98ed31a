//! The one error type of the record crate: every failure a caller can meet, with a message that says what
//! went wrong and what to do.

use crate::event::EventId;

/// Everything that can go wrong when opening, writing, reading or exporting the record.
///
/// A failed append never leaves part of its batch behind: every variant returned by
/// [`crate::Store::append`] means nothing of the batch was written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A field of an event or a query argument is not acceptable.
    #[error("invalid {what}: {reason}")]
    InvalidEvent { what: String, reason: String },

    /// The database URL names no supported backend.
    #[error(
        "unsupported database URL {url:?}: use sqlite://PATH (the default, a file in the data directory) or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
    )]
    UnsupportedUrl { url: String },

    /// Another writer held the database for longer than the busy timeout.
    #[error(
        "the record database is locked by another writer (waited {waited_ms} ms); nothing was written — retry, and check that no other process holds a long transaction on it"
    )]
    Locked { waited_ms: u64 },

    /// The disk, or the configured size limit of the database, is full.
    #[error(
        "the record database is full (disk or configured size limit); nothing was written — free disk space or raise the limit, then retry"
    )]
    Full,

    /// A device re-sent a sequence number it had already used for a different event.
    #[error(
        "device {device_id:?} sequence number {device_seq} is already recorded as event {existing} with different content; nothing was written — a device must never reuse a sequence number"
    )]
    DedupConflict {
        device_id: String,
        device_seq: i64,
        existing: EventId,
    },

    /// A concurrent writer appended to the same chain or key at the same moment; the batch may be retried.
    #[error("a concurrent write conflicted with this batch; nothing was written — retry the batch")]
    Conflict,

    /// The database was written by a newer version of Infusafe.
    #[error(
        "the record database has schema version {found}, newer than this build understands ({supported}); upgrade Infusafe"
    )]
    SchemaTooNew { found: i64, supported: i64 },

    /// A stored row could not be read back (a column holds something this build never writes).
    #[error("stored event {id} is unreadable: {reason}; run `infusafe record verify`")]
    Corrupt { id: i64, reason: String },

    /// No connection to the database could be made in time (server down, wrong host or port).
    #[error(
        "cannot reach the record database within {waited_ms} ms: check the database URL and that the database server is running"
    )]
    Unreachable { waited_ms: u64 },

    /// The database could not be reached or failed in a way not listed above.
    #[error("record database error: {0}")]
    Database(#[source] sqlx::Error),

    /// An append-only trigger of `record_events` is missing or disabled: someone changed the database
    /// outside Infusafe. The store refuses to open (unless [`crate::Config::require_append_only_guards`]
    /// is off, as `infusafe record verify` does to inspect such a database).
    #[error(
        "the append-only trigger {trigger} on record_events is missing or disabled: the database was changed outside Infusafe and events may have been altered or removed, so Infusafe will not use it. Check the record against your latest checkpoint (`infusafe record verify --checkpoint FILE --key-file KEY`), then restore the trigger as the database owner with: {restore}"
    )]
    GuardMissing { trigger: String, restore: String },

    /// A checkpoint or its key is unusable (unreadable, wrong format, signature mismatch), or a checkpoint
    /// was asked of a broken record.
    #[error("checkpoint: {reason}")]
    Checkpoint { reason: String },

    /// Creating the data directory failed.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The pool waits this much longer than the busy timeout for a connection.
pub(crate) const ACQUIRE_EXTRA_MS: u64 = 5_000;

/// How long the store waited before reporting `Locked`; filled in by the store.
pub(crate) fn classify(error: sqlx::Error, busy_timeout_ms: u64) -> RecordError {
    if let sqlx::Error::PoolTimedOut = error {
        return RecordError::Unreachable {
            waited_ms: busy_timeout_ms + ACQUIRE_EXTRA_MS,
        };
    }
    if let sqlx::Error::Database(db) = &error
        && let Some(code) = db.code()
    {
        let code = code.as_ref();
        // SQLite reports numeric (extended) result codes; the primary code is the low byte.
        if let Ok(numeric) = code.parse::<i64>() {
            match numeric & 0xff {
                5 | 6 => {
                    return RecordError::Locked {
                        waited_ms: busy_timeout_ms,
                    };
                }
                13 => return RecordError::Full,
                _ => {}
            }
        }
        // PostgreSQL SQLSTATE codes.
        match code {
            "53100" => return RecordError::Full,
            "55P03" => {
                return RecordError::Locked {
                    waited_ms: busy_timeout_ms,
                };
            }
            "23505" | "40001" | "40P01" => return RecordError::Conflict,
            _ => {}
        }
    }
    RecordError::Database(error)
}

/// Whether a database error means the database is gone for now (down, restarting, unreachable, overloaded)
/// rather than a fault in a query: callers answer the first with "try again shortly" (HTTP 503), the second is a
/// bug. PostgreSQL codes: connection exceptions (class 08), operator intervention such as a restart (57P01 to
/// 57P03), insufficient resources (class 53).
pub fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::database_unavailable;

    #[test]
    fn a_database_that_is_away_is_told_from_a_faulty_query() {
        let io = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the server closed the connection",
        ));
        assert!(database_unavailable(&io));
        assert!(database_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(database_unavailable(&sqlx::Error::PoolClosed));
        assert!(!database_unavailable(&sqlx::Error::RowNotFound));
        assert!(!database_unavailable(&sqlx::Error::ColumnNotFound(
            "x".into()
        )));
    }
}
