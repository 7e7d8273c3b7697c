//! Databases for tests: a fresh SQLite file, or a fresh PostgreSQL database on the machine's
//! server (dropped again when the test ends).

use diesel::{Connection, PgConnection, RunQueryDsl};
use llmgate::db::DbTarget;

/// The machine's PostgreSQL, reached as a superuser with trust auth.
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test.
pub struct TestDb {
    /// Where it is.
    pub target: DbTarget,
    /// `general_settings.database_url` for it.
    pub url: String,
    pg_name: Option<String>,
}

impl TestDb {
    /// A new SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let path = super::binary::temp_dir("db").join("llmgate.db");
        let path = path.display().to_string();
        Self {
            url: format!("sqlite://{path}"),
            target: DbTarget::Sqlite(path),
            pg_name: None,
        }
    }

    /// A new, empty PostgreSQL database.
    pub fn postgres() -> Self {
        let name = format!("llmgate_test_{}_{}", std::process::id(), fastrand::u64(..));
        let mut admin =
            PgConnection::establish(PG_ADMIN_URL).expect("the machine's PostgreSQL is up");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("creates a test database");
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        Self {
            target: DbTarget::Postgres(url.clone()),
            url,
            pg_name: Some(name),
        }
    }

    /// The same database reached through `port` on 127.0.0.1 (a proxy the test controls).
    pub fn url_via_port(&self, port: u16) -> String {
        self.url
            .replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut admin) = PgConnection::establish(PG_ADMIN_URL) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

/// Both backends, for tests that must hold on each.
pub fn both() -> [TestDb; 2] {
    [TestDb::sqlite(), TestDb::postgres()]
}
