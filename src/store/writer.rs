//! Group commit. Every write runs as a job on one writer task, which runs whatever jobs are queued
//! back to back inside a single transaction, appends their audit entries to the hash chain, and
//! commits once. One durable commit (one fsync) then covers a whole batch, and callers learn the
//! outcome only after it is durable.
//!
//! One job's failure never fails the others of its batch:
//! - A job that returns a domain error (a refusal) must not have written anything; its audit
//!   entries are dropped and the batch goes on. A job that must refuse *and* keep what it wrote
//!   (the audit entry of the attempt) returns [`Committed::Refused`] instead.
//! - On PostgreSQL every job runs inside a savepoint (a failed statement there spoils the whole
//!   transaction): released when the job succeeds, rolled back to when it fails.
//! - On SQLite a job that fails at the database (or with an internal error) may have written part
//!   of its work, and SQLite undoes only the failed statement: the batch is rolled back, that job
//!   gets its error, and the jobs that had run before it are run again, afresh, at the head of
//!   the next batch (each job can be made again: see [`MakeJob`]). Per-job savepoints would
//!   spare the re-runs, but every job would pay for them on SQLite, about 12 % of issuance
//!   throughput (docs/PERFORMANCE.md), for a failure that is rare.
//!
//! The whole batch fails only when the connection does: a savepoint that cannot be set, released
//! or rolled back to, or a failed audit append or `COMMIT`; jobs that had not run yet are then run
//! in the next batch.
//!
//! Across instances sharing a PostgreSQL database, every write transaction first takes one
//! transaction-scoped advisory lock: batches from all instances commit one after another, as they
//! do on SQLite, and the audit chain head is always read fresh under the lock.

use super::audit::{self, NewEntry};
use super::Conn;
use crate::error::{Error, Result};
use futures_util::future::BoxFuture;
use std::any::Any;
use tokio::sync::{mpsc, oneshot};

/// What a write job returns when it may refuse after writing something that must stay (an audit
/// entry of the attempt): either way the job's changes and audit entries commit, and the caller
/// gets [`Committed::into_result`]. A job that returns `Err` instead is rolled back.
#[derive(Debug)]
pub enum Committed<T> {
    /// The job did what it was asked.
    Done(T),
    /// The job refused; what it wrote commits all the same.
    Refused(Error),
}

impl<T> Committed<T> {
    /// The value, or the refusal as an error.
    pub fn into_result(self) -> Result<T> {
        match self {
            Committed::Done(v) => Ok(v),
            Committed::Refused(e) => Err(e),
        }
    }
}

/// Most jobs in one transaction.
pub const MAX_BATCH: usize = 256;
/// On PostgreSQL each job's savepoint is a subtransaction; past 64 in one transaction the server's
/// per-session cache overflows and snapshots slow down for everyone.
const MAX_BATCH_POSTGRES: usize = 64;
/// A batch that takes longer than this (a stalled connection) is abandoned and the connection
/// dropped; its callers get an error.
const BATCH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

type Output = Box<dyn Any + Send>;
pub(crate) type Job = Box<
    dyn for<'c> FnOnce(&'c mut Conn, &'c mut Vec<NewEntry>) -> BoxFuture<'c, Result<Output>> + Send,
>;

/// Makes a fresh run of a job: a job whose batch was rolled back because of another job runs
/// again in the next batch.
pub(crate) type MakeJob = Box<dyn Fn() -> Job + Send>;

pub(crate) struct Queued {
    make: MakeJob,
    reply: oneshot::Sender<Result<Output>>,
}

pub(crate) fn queued(make: MakeJob) -> (Queued, oneshot::Receiver<Result<Output>>) {
    let (reply, rx) = oneshot::channel();
    (Queued { make, reply }, rx)
}

/// Key of the advisory lock that serialises write transactions across instances ("vouch").
const WRITE_LOCK: i64 = 0x0076_6f75_6368;

pub(crate) fn spawn(conn: Conn, db: super::Database) -> mpsc::Sender<Queued> {
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    tokio::spawn(run(conn, rx, db));
    tx
}

async fn begin(conn: &mut Conn, postgres: bool) -> Result<()> {
    if postgres {
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK)
            .execute(&mut *conn)
            .await?;
    } else {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    }
    Ok(())
}

async fn run(conn: Conn, mut rx: mpsc::Receiver<Queued>, db: super::Database) {
    let postgres = db.is_postgres();
    // None after the connection was lost (a database restart, a network cut): the next batch
    // connects again, so the instance recovers without a restart.
    let mut conn = Some(conn);
    // The chain head as of our last commit; None when unknown (start, or after a rollback).
    let mut head: Option<(i64, Vec<u8>)> = None;
    let mut carried: Vec<Queued> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut carried);
        if batch.is_empty() {
            match rx.recv().await {
                Some(q) => batch.push(q),
                None => return,
            }
        }
        let max = if postgres {
            MAX_BATCH_POSTGRES
        } else {
            MAX_BATCH
        };
        while batch.len() < max {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        // Another instance may have appended since our last commit: read the head fresh.
        if postgres {
            head = None;
        }
        if conn.is_none() {
            match super::connect_writer(&db).await {
                Ok(c) => {
                    tracing::info!("database connection re-established");
                    conn = Some(c);
                }
                Err(e) => {
                    let message = format!("the database is unavailable: {e}");
                    for q in batch {
                        let _ = q.reply.send(Err(Error::internal(&message)));
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let Ok((rest, ok)) =
            tokio::time::timeout(BATCH_DEADLINE, run_batch(c, &mut head, batch, postgres)).await
        else {
            // The batch's callers see their reply channel dropped ("the writer dropped a job").
            tracing::error!("a write batch stalled for 60 s; dropping the database connection");
            conn = None;
            head = None;
            continue;
        };
        carried = rest;
        if !ok {
            use sqlx::Connection;
            if c.ping().await.is_err() {
                tracing::warn!("lost the database connection; reconnecting for the next batch");
                conn = None;
                head = None;
            }
        }
    }
}

/// Run one batch; returns the jobs that did not run and must go into the next one, and whether the
/// batch committed.
async fn run_batch(
    conn: &mut Conn,
    head: &mut Option<(i64, Vec<u8>)>,
    batch: Vec<Queued>,
    postgres: bool,
) -> (Vec<Queued>, bool) {
    if let Err(e) = begin(conn, postgres).await {
        // Leave no half-open transaction behind (PostgreSQL: BEGIN succeeded, the lock failed).
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        let message = format!("could not begin a write transaction: {e}");
        for q in batch {
            let _ = q.reply.send(Err(Error::internal(&message)));
        }
        return (Vec::new(), false);
    }
    let mut entries: Vec<NewEntry> = Vec::new();
    let mut done: Vec<(Queued, Result<Output>)> = Vec::with_capacity(batch.len());
    let mut rest = batch.into_iter();
    let mut fatal: Option<String> = None;
    while let Some(q) = rest.next() {
        let mark = entries.len();
        // PostgreSQL: a failed statement spoils the whole transaction, so every job runs in a
        // savepoint, released when it succeeds and rolled back to when it fails.
        if postgres {
            if let Err(e) = sqlx::query("SAVEPOINT job").execute(&mut *conn).await {
                fatal = Some(e.to_string());
                let _ = q.reply.send(Err(e.into()));
                break;
            }
        }
        let outcome = ((q.make)())(conn, &mut entries).await;
        if postgres {
            let undo = match &outcome {
                Ok(_) => "RELEASE SAVEPOINT job",
                Err(_) => "ROLLBACK TO SAVEPOINT job",
            };
            if let Err(e) = sqlx::query(undo).execute(&mut *conn).await {
                fatal = Some(e.to_string());
                let _ = q.reply.send(Err(e.into()));
                break;
            }
        } else if let Err(Error::Database(_) | Error::Internal(_) | Error::Environment(_)) =
            &outcome
        {
            // SQLite: the job may have written part of its work (SQLite undoes only the failed
            // statement). Roll the batch back; the job gets its error and the jobs that had run
            // before it run again, afresh, in the next batch, as if they had come after it.
            // Savepoints would spare the re-runs, but on SQLite every job would then pay for
            // them (the first write to each page inside a savepoint copies it to the statement
            // journal): about 12 % of issuance throughput, for a failure that is rare.
            let rolled_back = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            *head = None;
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "a write job failed; its batch runs again without it");
                let _ = q.reply.send(Err(e));
            }
            let mut again: Vec<Queued> = done.into_iter().map(|(q, _)| q).collect();
            again.extend(rest);
            return (again, rolled_back.is_ok());
        }
        if outcome.is_err() {
            entries.truncate(mark);
        }
        done.push((q, outcome));
    }
    let carried: Vec<Queued> = rest.collect();
    let finish = async {
        if let Some(why) = fatal {
            return Err(Error::internal(format!("write batch rolled back: {why}")));
        }
        let new_head = if entries.is_empty() {
            None
        } else {
            Some(audit::append_batch(conn, head.clone(), &entries).await?)
        };
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        Ok(new_head)
    }
    .await;
    let ok = finish.is_ok();
    match finish {
        Ok(new_head) => {
            if new_head.is_some() {
                *head = new_head;
            }
            for (q, result) in done {
                let _ = q.reply.send(result);
            }
        }
        Err(e) => {
            *head = None;
            if let Err(rb) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                tracing::error!(error = %rb, "rollback failed");
            }
            tracing::error!(error = %e, "write batch failed");
            let message = e.to_string();
            for (q, result) in done {
                let _ = q.reply.send(match result {
                    Ok(_) => Err(Error::internal(&message)),
                    Err(job_error) => Err(job_error),
                });
            }
        }
    }
    (carried, ok)
}

#[cfg(test)]
mod tests {
    use super::super::{job, Store};
    use crate::audit::{self, Action, Event, Verdict};
    use crate::error::Error;

    fn event(n: usize) -> Event {
        Event::new(
            None,
            Action::KeyBlocked,
            Some(&n.to_string()),
            serde_json::json!({}),
        )
    }

    async fn insert_key(store: &Store, n: usize, fail: bool) -> crate::error::Result<()> {
        store
            .write(job!(|c, log| {
                let key = format!("{n:064}");
                crate::store::certificates::block_key(c, &key, "test", None, 0).await?;
                audit::record(log, time::OffsetDateTime::now_utc(), event(n));
                if fail {
                    return Err(Error::internal("injected"));
                }
                Ok(())
            }))
            .await
    }

    async fn keys(store: &Store) -> i64 {
        let mut c = store.read().await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM blocked_keys")
            .fetch_one(&mut *c)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn concurrent_jobs_commit_and_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let jobs: Vec<_> = (0..200)
            .map(|n| {
                tokio::spawn({
                    let s = store.clone();
                    async move { insert_key(&s, n, false).await }
                })
            })
            .collect();
        for j in jobs {
            j.await.unwrap().unwrap();
        }
        assert_eq!(keys(&store).await, 200);
        let mut c = store.read().await.unwrap();
        assert!(matches!(
            audit::verify(&mut c).await.unwrap(),
            Verdict::Intact { entries: 200, .. }
        ));
    }

    #[tokio::test]
    async fn a_failing_job_is_rolled_back_and_later_jobs_still_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        insert_key(&store, 0, false).await.unwrap();
        assert!(insert_key(&store, 1, true).await.is_err());
        insert_key(&store, 2, false).await.unwrap();
        assert_eq!(
            keys(&store).await,
            2,
            "the failed job's insert was rolled back"
        );
        let mut c = store.read().await.unwrap();
        assert!(matches!(
            audit::verify(&mut c).await.unwrap(),
            Verdict::Intact { entries: 2, .. }
        ));
    }

    #[tokio::test]
    async fn two_writers_on_one_database_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let a = Store::open(&path).await.unwrap();
        let b = Store::open(&path).await.unwrap();
        for n in 0..10 {
            // Alternate, so each writer's cached head is stale on every other write.
            let s = if n % 2 == 0 { &a } else { &b };
            insert_key(s, n, false).await.unwrap();
        }
        let mut c = a.read().await.unwrap();
        assert!(matches!(
            audit::verify(&mut c).await.unwrap(),
            Verdict::Intact { entries: 10, .. }
        ));
    }

    /// A job whose statement fails at the database (a unique violation it does not catch) gets its
    /// database error and loses what it wrote before; the jobs batched with it commit.
    #[tokio::test]
    async fn a_job_with_a_database_error_leaves_its_batch_mates_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        insert_key(&store, 0, false).await.unwrap();
        // Keep the writer busy while the jobs queue, so they run together in one batch.
        let sleeper = {
            let s = store.clone();
            tokio::spawn(async move {
                s.write(job!(|_, _| {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    Ok(())
                }))
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let jobs: Vec<_> = (1..40)
            .map(|n| {
                let s = store.clone();
                tokio::spawn(async move {
                    if n % 3 != 0 {
                        return insert_key(&s, n, false).await;
                    }
                    s.write(job!(|c, log| {
                        audit::record(log, time::OffsetDateTime::now_utc(), event(n));
                        // Written, then undone with the job.
                        let own = format!("{:064}", 1000 + n);
                        crate::store::certificates::block_key(c, &own, "test", None, 0).await?;
                        sqlx::query(
                            "INSERT INTO blocked_keys (key_sha256, reason, blocked_at) \
                             VALUES ($1, 'x', 0)",
                        )
                        .bind(format!("{:064}", 0))
                        .execute(&mut *c)
                        .await?;
                        Ok(())
                    }))
                    .await
                })
            })
            .collect();
        for (i, j) in jobs.into_iter().enumerate() {
            let n = i + 1;
            let r = j.await.unwrap();
            if n % 3 == 0 {
                assert!(r.is_err(), "job {n} violated a unique constraint");
            } else {
                r.unwrap_or_else(|e| panic!("job {n} failed with its batch-mate: {e}"));
            }
        }
        sleeper.await.unwrap().unwrap();
        assert_eq!(keys(&store).await, 1 + 26);
        let mut c = store.read().await.unwrap();
        assert!(matches!(
            audit::verify(&mut c).await.unwrap(),
            Verdict::Intact { entries: 27, .. }
        ));
    }
}
