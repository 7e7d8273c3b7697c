//! `DbHandle`: every database call runs on one dedicated arbiter, so pooled connections (and
//! the tasks that drive them) live on a runtime that outlives the HTTP workers.

use std::future::Future;

use actix_rt::{Arbiter, ArbiterHandle};

use super::{Db, DbError, DbTarget};

/// The database and the arbiter its work runs on.
#[derive(Clone)]
pub struct DbHandle {
    arbiter: ArbiterHandle,
    db: Db,
    target: DbTarget,
}

impl DbHandle {
    /// Starts the database arbiter, connects and migrates there.
    pub async fn connect(target: DbTarget, pool_size: u32) -> Result<Self, DbError> {
        let arbiter = Arbiter::new().handle();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let for_connect = target.clone();
        arbiter.spawn_fn(move || {
            actix_rt::spawn(async move {
                let _ = tx.send(Db::connect(&for_connect, pool_size).await);
            });
        });
        let db = rx
            .await
            .map_err(|_| DbError::Unavailable("the database arbiter stopped".into()))??;
        Ok(Self {
            arbiter,
            db,
            target,
        })
    }

    /// Runs `work` on the database arbiter and waits for its result.
    pub async fn run<R, F, Fut>(&self, work: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(Db) -> Fut + Send + 'static,
        Fut: Future<Output = Result<R, DbError>> + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let db = self.db.clone();
        let sent = self.arbiter.spawn_fn(move || {
            actix_rt::spawn(async move {
                let _ = tx.send(work(db).await);
            });
        });
        if !sent {
            return Err(DbError::Unavailable("the database arbiter stopped".into()));
        }
        rx.await
            .map_err(|_| DbError::Unavailable("the database arbiter stopped".into()))?
    }

    /// The arbiter, for actors that write to the database.
    pub fn arbiter(&self) -> &ArbiterHandle {
        &self.arbiter
    }

    /// The pool, for code already running on the database arbiter.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Which database this is.
    pub fn target(&self) -> &DbTarget {
        &self.target
    }
}
