//! Each clinic's webhook address and signing secret (`srv_clinics`), the notifications waiting to be delivered
//! (`srv_webhook_outbox`, leased to one process at a time) and every delivery attempt (`srv_webhook_attempts`).

use sqlx::Row;

use super::Db;
use crate::error::AppError;

/// `(url, secret)` of a clinic's webhook; `None` when the clinic does not exist.
pub async fn target(
    db: &Db,
    clinic_id: &str,
) -> Result<Option<(Option<String>, String)>, AppError> {
    let Some(row) =
        sqlx::query("SELECT webhook_url, webhook_secret FROM srv_clinics WHERE id = $1")
            .bind(clinic_id.to_string())
            .fetch_optional(&db.pool)
            .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        row.try_get("webhook_url").ok().flatten(),
        row.try_get("webhook_secret").unwrap_or_default(),
    )))
}

/// Set (or remove) a clinic's webhook URL; returns the signing secret.
pub async fn set_url(db: &Db, clinic_id: &str, url: Option<&str>) -> Result<String, AppError> {
    sqlx::query("UPDATE srv_clinics SET webhook_url = $1 WHERE id = $2")
        .bind(url.map(str::to_string))
        .bind(clinic_id.to_string())
        .execute(&db.pool)
        .await?;
    let row = sqlx::query("SELECT webhook_secret FROM srv_clinics WHERE id = $1")
        .bind(clinic_id.to_string())
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get("webhook_secret")?)
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: String,
    pub clinic_id: String,
    pub notification_id: String,
    pub attempt: i64,
    pub at_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub delivered: bool,
}

pub async fn insert_attempt(db: &Db, a: &Attempt) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO srv_webhook_attempts (id, clinic_id, notification_id, attempt, at_ms, status_code, error, delivered) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.id.clone())
    .bind(a.clinic_id.clone())
    .bind(a.notification_id.clone())
    .bind(a.attempt)
    .bind(a.at_ms)
    .bind(a.status_code)
    .bind(a.error.clone())
    .bind(i64::from(a.delivered))
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// A notification in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: String,
    pub clinic_id: String,
    pub patient_id: String,
    pub kind: String,
    /// The JSON body as it is signed and sent (the same bytes on every attempt).
    pub body: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// The end of the lease this process holds (0 when not leased): an attempt's outcome is written only while
    /// the lease is still this one, so a process whose lease ran out never undoes its successor's work.
    pub lease_until_ms: i64,
}

/// Put a notification in the outbox, due now; `false` if one with its id is already there (the id names what is
/// notified, so queuing the same thing twice sends it once).
pub async fn enqueue(db: &Db, o: &Outgoing, now_ms: i64) -> Result<bool, AppError> {
    let done = sqlx::query(
        "INSERT INTO srv_webhook_outbox (id, clinic_id, patient_id, kind, body, created_at_ms, attempts, next_at_ms, lease_until_ms) VALUES ($1, $2, $3, $4, $5, $6, 0, $6, 0) ON CONFLICT (id) DO NOTHING",
    )
    .bind(o.id.clone())
    .bind(o.clinic_id.clone())
    .bind(o.patient_id.clone())
    .bind(o.kind.clone())
    .bind(o.body.clone())
    .bind(now_ms)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Lease up to `limit` due notifications to the caller until `lease_until_ms`. A notification leased to another
/// process is not due until its lease runs out (PostgreSQL re-checks the lease on each row it updates, so two
/// processes never take the same one).
pub async fn lease_due(
    db: &Db,
    now_ms: i64,
    lease_until_ms: i64,
    limit: i64,
) -> Result<Vec<Outgoing>, AppError> {
    let rows = sqlx::query(
        "UPDATE srv_webhook_outbox SET lease_until_ms = $1 \
         WHERE id IN (SELECT id FROM srv_webhook_outbox WHERE done_at_ms IS NULL AND next_at_ms <= $2 AND lease_until_ms <= $2 ORDER BY next_at_ms LIMIT $3) \
         AND done_at_ms IS NULL AND lease_until_ms <= $2 \
         RETURNING id, clinic_id, patient_id, kind, body, attempts, lease_until_ms",
    )
    .bind(lease_until_ms)
    .bind(now_ms)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Outgoing {
                id: r.try_get("id")?,
                clinic_id: r.try_get("clinic_id")?,
                patient_id: r.try_get("patient_id")?,
                kind: r.try_get("kind")?,
                body: r.try_get("body")?,
                attempts: r.try_get("attempts")?,
                lease_until_ms: r.try_get("lease_until_ms")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(AppError::from)
}

/// An attempt failed: try again at `next_at_ms` (the lease ends). `false` if the lease was no longer this one
/// (it ran out and another process took the notification over): nothing is changed.
pub async fn retry_at(
    db: &Db,
    o: &Outgoing,
    attempts: i64,
    next_at_ms: i64,
) -> Result<bool, AppError> {
    let done = sqlx::query(
        "UPDATE srv_webhook_outbox SET attempts = $1, next_at_ms = $2, lease_until_ms = 0 \
         WHERE id = $3 AND lease_until_ms = $4 AND done_at_ms IS NULL",
    )
    .bind(attempts)
    .bind(next_at_ms)
    .bind(o.id.clone())
    .bind(o.lease_until_ms)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Delivered, or given up: out of the queue. `false` if the lease was no longer this one (another process has
/// the notification now and writes its outcome).
pub async fn finish(db: &Db, o: &Outgoing, attempts: i64, now_ms: i64) -> Result<bool, AppError> {
    let done = sqlx::query(
        "UPDATE srv_webhook_outbox SET attempts = $1, done_at_ms = $2 \
         WHERE id = $3 AND lease_until_ms = $4 AND done_at_ms IS NULL",
    )
    .bind(attempts)
    .bind(now_ms)
    .bind(o.id.clone())
    .bind(o.lease_until_ms)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Which of these notification ids are in the outbox (queued, sent or given up).
pub async fn queued_among(
    db: &Db,
    ids: &[String],
) -> Result<std::collections::HashSet<String>, AppError> {
    let mut found = std::collections::HashSet::new();
    for chunk in ids.chunks(500) {
        let mut sql = String::from("SELECT id FROM srv_webhook_outbox WHERE id IN (");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", i + 1));
        }
        sql.push(')');
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.clone());
        }
        for row in query.fetch_all(&db.pool).await? {
            found.insert(row.try_get::<String, _>("id")?);
        }
    }
    Ok(found)
}

/// Where the escalation sweep (`services::webhook::sweep`) stopped: the record event id below which every
/// escalation has its notification queued. `None` before the first sweep.
pub async fn sweep_mark(db: &Db) -> Result<Option<i64>, AppError> {
    let row =
        sqlx::query("SELECT after_event_id FROM srv_webhook_sweep WHERE name = 'escalations'")
            .fetch_optional(&db.pool)
            .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("after_event_id")?),
        None => None,
    })
}

/// Move the sweep's mark (never back: two processes that both swept keep the higher mark).
pub async fn set_sweep_mark(db: &Db, after_event_id: i64) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO srv_webhook_sweep (name, after_event_id) VALUES ('escalations', $1) \
         ON CONFLICT (name) DO UPDATE SET after_event_id = excluded.after_event_id \
         WHERE srv_webhook_sweep.after_event_id < excluded.after_event_id",
    )
    .bind(after_event_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}
