//! Storage: one enum over the PostgreSQL and SQLite pools, migrations at startup, queries.

pub mod audit;
pub mod entities;
pub mod files;
mod handle;
pub mod keys;
pub mod models;
pub mod models_store;
pub mod report;
mod rollup;
pub mod schema;
pub mod spend;
pub mod views;

use std::time::Duration;

use diesel::{Connection, SqliteConnection};
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use handle::DbHandle;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// SQLite behind diesel-async's blocking-thread wrapper.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Why a database operation failed. Messages never include the connection URL.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Migrations failed.
    #[error("database migrations failed: {0}")]
    Migration(String),
}

impl DbError {
    /// A pool error.
    pub fn pool(e: impl std::fmt::Display) -> Self {
        Self::Unavailable(e.to_string())
    }

    /// Whether the row was already there (a unique constraint).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// The pool of the configured backend.
#[derive(Clone)]
pub enum Db {
    /// `database_url` / `DATABASE_URL` is set.
    Postgres(Pool<AsyncPgConnection>),
    /// The embedded default.
    Sqlite(Pool<SqliteConn>),
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend `$db` is.
/// The body is compiled once per backend, so a query must be valid on both.
macro_rules! with_conn {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres(pool) => {
                let mut pooled = pool.get().await.map_err($crate::db::DbError::pool)?;
                let $conn = &mut *pooled;
                $body
            }
            $crate::db::Db::Sqlite(pool) => {
                let mut pooled = pool.get().await.map_err($crate::db::DbError::pool)?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// A PostgreSQL URL.
    Postgres(String),
    /// A SQLite file path, or `:memory:`.
    Sqlite(String),
}

impl DbTarget {
    /// A short, secret-free description for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres(_) => "PostgreSQL".to_owned(),
            Self::Sqlite(path) => format!("SQLite at {path}"),
        }
    }
}

fn sqlite_setup(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute(
        "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
}

fn migrate_sqlite(path: &str) -> Result<SqliteConnection, DbError> {
    let mut conn = SqliteConnection::establish(path).map_err(DbError::pool)?;
    sqlite_setup(&mut conn)?;
    if path != ":memory:" {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("PRAGMA journal_mode = WAL;")?;
    }
    conn.run_pending_migrations(SQLITE_MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(conn)
}

/// Runs the PostgreSQL migrations on a thread of their own: the synchronous migration harness
/// drives tokio-postgres with a runtime of its own, which may not nest inside actix's.
async fn migrate_postgres(url: String) -> Result<(), DbError> {
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = (|| {
            let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
                .map_err(|e| DbError::pool(redact(&e.to_string())))?;
            conn.run_pending_migrations(PG_MIGRATIONS)
                .map_err(|e| DbError::Migration(e.to_string()))?;
            Ok::<_, DbError>(())
        })();
        let _ = tx.send(result);
    });
    rx.await
        .map_err(|_| DbError::Migration("the migration thread stopped".into()))?
}

impl Db {
    /// Connects, runs the migrations, and builds a pool of at most `pool_size` connections.
    pub async fn connect(target: &DbTarget, pool_size: u32) -> Result<Self, DbError> {
        match target {
            DbTarget::Postgres(url) => {
                migrate_postgres(url.clone()).await?;
                let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url.clone());
                let pool = Pool::builder()
                    .max_size(pool_size.max(1))
                    // Connections open as load needs them, so an idle gateway stays small.
                    .min_idle(Some(1))
                    .connection_timeout(Duration::from_secs(5))
                    .build(manager)
                    .await
                    .map_err(DbError::pool)?;
                Ok(Self::Postgres(pool))
            }
            DbTarget::Sqlite(path) => {
                let path = path.clone();
                let memory = path == ":memory:";
                // An in-memory database exists per connection: the pool holds the one connection
                // the migrations ran on.
                let first = {
                    let path = path.clone();
                    actix_rt::task::spawn_blocking(move || migrate_sqlite(&path))
                        .await
                        .map_err(DbError::pool)??
                };
                let mut config = ManagerConfig::<SqliteConn>::default();
                config.custom_setup = Box::new(|url| {
                    let url = url.to_owned();
                    Box::pin(async move {
                        let conn = actix_rt::task::spawn_blocking(move || {
                            let mut c = SqliteConnection::establish(&url)?;
                            sqlite_setup(&mut c)
                                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                            Ok::<_, diesel::ConnectionError>(c)
                        })
                        .await
                        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))??;
                        Ok(SyncConnectionWrapper::new(conn))
                    })
                });
                let manager =
                    AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
                let builder = Pool::builder()
                    .max_size(if memory { 1 } else { pool_size.max(1) })
                    .connection_timeout(Duration::from_secs(10));
                let pool = if memory {
                    let pool = builder.min_idle(Some(0)).build_unchecked(manager);
                    pool.add(SyncConnectionWrapper::new(first)).map_err(|_| {
                        DbError::Unavailable("cannot pool the in-memory connection".into())
                    })?;
                    pool
                } else {
                    drop(first);
                    builder
                        .min_idle(Some(1))
                        .build(manager)
                        .await
                        .map_err(DbError::pool)?
                };
                Ok(Self::Sqlite(pool))
            }
        }
    }

    /// Whether a trivial query succeeds now.
    pub async fn ping(&self) -> bool {
        use diesel_async::SimpleAsyncConnection;
        let check = async {
            with_conn!(self, conn => conn.batch_execute("SELECT 1").await.map_err(DbError::from))
        };
        matches!(
            actix_rt::time::timeout(Duration::from_secs(2), check).await,
            Ok(Ok(()))
        )
    }
}

/// Removes anything that looks like a password from a connection error message.
fn redact(message: &str) -> String {
    message
        .split_whitespace()
        .map(|w| {
            if w.contains("://") || w.starts_with("password") {
                "<redacted>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The migrations of one tree, by directory name.
    fn tree(backend: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn migration_versions_are_unique_and_both_trees_have_the_same_migrations() {
        let sqlite = tree("sqlite");
        assert_eq!(sqlite, tree("postgres"), "the two trees differ");
        // diesel knows a migration by the version before its first `_`: two with one version
        // would leave the second unapplied.
        let versions: BTreeSet<&str> = sqlite
            .iter()
            .map(|n| n.split_once('_').map_or(n.as_str(), |(v, _)| v))
            .collect();
        assert_eq!(
            versions.len(),
            sqlite.len(),
            "a version is shared: {sqlite:?}"
        );
    }
}
