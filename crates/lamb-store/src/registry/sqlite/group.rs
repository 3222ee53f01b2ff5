//! Group commit: concurrent writes of the async queue (an accepted event,
//! an attempt's outcome) share one transaction and one sync of the WAL.
//!
//! With `synchronous=FULL` every commit syncs the WAL (0.3 ms to tens of
//! milliseconds on a busy shared virtual disk), so one transaction per
//! accepted event caps the queue at a few hundred events a second whatever
//! the cores. Here a writer queues its
//! write, and the first writer to find no group committing becomes the
//! leader: it takes every write queued so far, runs each in a savepoint of
//! one immediate transaction (a write that fails is rolled back alone and
//! answers its own error), commits once, and only then answers each writer.
//! Writers arriving meanwhile form the next group. A single write's
//! guarantee is kept: a call answers `Ok` only once the transaction holding
//! its write has committed and synced, so an event answered 202 survives
//! `kill -9` and power loss as before.

use crate::error::StoreError;
use crate::registry::sql::Transaction;
use rusqlite::{Connection, TransactionBehavior};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// One queued write: runs in the group's transaction and hands back what
/// answers its writer once the group's fate is known.
type Job = Box<dyn FnOnce(&Connection) -> Answer + Send>;
/// Answers a writer: `None` when the group committed, else why it did not.
type Answer = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

#[derive(Default)]
pub(super) struct GroupCommit {
    state: Mutex<State>,
    /// Signalled when a leader has answered its group.
    done: Condvar,
}

#[derive(Default)]
struct State {
    pending: Vec<Job>,
    committing: bool,
}

impl GroupCommit {
    /// Runs `f` in the next group's transaction on `conn`; answers once that
    /// transaction has committed (its result) or failed (the failure).
    pub(super) fn write<T: Send + 'static>(
        &self,
        conn: &Mutex<Connection>,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (send, answer) = sync_channel(1);
        let job: Job = Box::new(move |tx| {
            let result = in_savepoint(tx, |tx| f(&Transaction::Sqlite(tx)));
            Box::new(move |failure| {
                let _ = send.send(match (failure, result) {
                    (Some(e), Ok(_)) => Err(copy_error(e).into()),
                    (_, result) => result,
                });
            })
        });
        let mut state = self.lock();
        state.pending.push(job);
        loop {
            match answer.try_recv() {
                Ok(result) => return result,
                Err(TryRecvError::Disconnected) => return Err(abandoned()),
                Err(TryRecvError::Empty) if state.committing => {
                    state = self.done.wait(state).unwrap_or_else(PoisonError::into_inner)
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        // The leader: this writer's job is among those taken here, since no
        // other leader answered it.
        state.committing = true;
        let jobs = std::mem::take(&mut state.pending);
        drop(state);
        let leader = Leader(self);
        commit(conn, jobs);
        drop(leader);
        receive(answer)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ends a leader's turn even if a job panicked, so the writers waiting
/// behind it are not stranded.
struct Leader<'a>(&'a GroupCommit);

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.0.lock().committing = false;
        self.0.done.notify_all();
    }
}

fn receive<T>(answer: Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
    answer.try_recv().unwrap_or_else(|_| Err(abandoned()))
}

/// Runs `jobs` in one immediate transaction and answers each of them after
/// the commit.
fn commit(conn: &Mutex<Connection>, jobs: Vec<Job>) {
    let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            // The jobs are dropped unrun: their writers get `abandoned`.
            tracing::error!(error = %e, writes = jobs.len(), "cannot begin a group of queue writes");
            return;
        }
    };
    let answers: Vec<Answer> = jobs.into_iter().map(|job| job(&tx)).collect();
    let failure = tx.commit().err();
    for answer in answers {
        answer(failure.as_ref());
    }
}

/// `f` in a savepoint of `tx`: its writes are undone alone when it fails.
/// The savepoint statements are prepared once per connection (cached), as
/// every queue write runs them.
fn in_savepoint<T>(tx: &Connection, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
    run_cached(tx, "SAVEPOINT lamb_group_write")?;
    match f(tx) {
        Ok(v) => {
            run_cached(tx, "RELEASE lamb_group_write")?;
            Ok(v)
        }
        Err(e) => {
            run_cached(tx, "ROLLBACK TO lamb_group_write")?;
            run_cached(tx, "RELEASE lamb_group_write")?;
            Err(e)
        }
    }
}

fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// The group's commit failure, for each of its writers.
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    let code = match e {
        rusqlite::Error::SqliteFailure(f, _) => f.extended_code,
        _ => rusqlite::ffi::SQLITE_ERROR,
    };
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(e.to_string()))
}

/// A write whose group never ran it (the transaction could not begin, or a
/// job of the group panicked): nothing of it was written.
fn abandoned() -> StoreError {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some("the write's group transaction did not run".into()),
    )
    .into()
}
