//! What the size examples share: opening a store in a directory, and a SQLite database's size.

use record::{Config, Store};

/// A SQLite database's size in bytes: `page_count * page_size` after folding the write-ahead log in.
pub async fn sqlite_size(url: &str) -> i64 {
    let pool = sqlx::SqlitePool::connect(url).await.expect("open");
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .expect("checkpoint");
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&pool)
        .await
        .expect("page_count");
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&pool)
        .await
        .expect("page_size");
    pool.close().await;
    pages * page
}

/// The record on SQLite in `dir`, and its database URL.
pub async fn open_sqlite(dir: &std::path::Path) -> (Store, String) {
    let config = Config::new(record::default_database_url(dir));
    let url = config.database_url.clone();
    (Store::open(config).await.expect("open store"), url)
}

/// The URL of a fresh schema of its own on the PostgreSQL server at `base` (created here), and the schema's name.
pub async fn postgres_schema(base: &str, label: &str) -> (String, String) {
    let schema = format!("{label}_{}", std::process::id());
    let admin = sqlx::PgPool::connect(base).await.expect("postgres");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .expect("create schema");
    admin.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    (
        format!("{base}{separator}options[search_path]={schema}"),
        schema,
    )
}
