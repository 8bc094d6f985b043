//! The accounts virtual players log in with: created in bulk through the IAM test-user endpoint
//! (with the game client's token), or read from a CSV of existing accounts and reused.
//!
//! Created users are never reused, so a late notification meant for one search cannot reach a
//! later one; the pool is filled ahead of need and refilled in the background in batches, so
//! arrivals rarely wait for an account. Existing accounts are handed back after each search.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use accelbyte::client::{AbClient, ClientError};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::Recorder;
use crate::outcome::{Endpoint, ErrorKind};
use crate::player::GameToken;
use crate::target::Account;

/// The most users one creation call asks for (the fakes' limit is 10,000).
pub const MAX_BATCH: u32 = 10_000;

/// One account.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub username: Arc<str>,
    pub password: Arc<str>,
}

// Hand-written so a password never reaches a log line.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

enum Source {
    Create {
        client: AbClient,
        token: Arc<GameToken>,
        namespace: String,
        batch: u32,
    },
    Fixed {
        total: usize,
    },
}

struct Inner {
    free: Mutex<VecDeque<User>>,
    returned: Notify,
    source: Source,
    creating: tokio::sync::Mutex<()>,
    refilling: AtomicBool,
    recorder: Recorder,
}

/// The pool; cheap to clone.
#[derive(Clone)]
pub struct UserPool {
    inner: Arc<Inner>,
}

impl fmt::Debug for UserPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserPool")
            .field("free", &self.inner.free.lock().len())
            .finish_non_exhaustive()
    }
}

impl UserPool {
    /// Creates users as needed, `batch` per call.
    pub fn created(
        client: AbClient,
        token: Arc<GameToken>,
        namespace: String,
        batch: u32,
        recorder: Recorder,
    ) -> Self {
        Self::with(
            Source::Create {
                client,
                token,
                namespace,
                batch: batch.clamp(1, MAX_BATCH),
            },
            VecDeque::new(),
            recorder,
        )
    }

    /// Hands out existing accounts and takes them back.
    pub fn fixed(accounts: Vec<Account>, recorder: Recorder) -> Self {
        let free: VecDeque<User> = accounts
            .into_iter()
            .map(|a| User {
                username: a.username,
                password: a.password,
            })
            .collect();
        Self::with(Source::Fixed { total: free.len() }, free, recorder)
    }

    fn with(source: Source, free: VecDeque<User>, recorder: Recorder) -> Self {
        UserPool {
            inner: Arc::new(Inner {
                free: Mutex::new(free),
                returned: Notify::new(),
                source,
                creating: tokio::sync::Mutex::new(()),
                refilling: AtomicBool::new(false),
                recorder,
            }),
        }
    }

    /// Whether users go back to the pool after a search.
    pub fn reuses(&self) -> bool {
        matches!(self.inner.source, Source::Fixed { .. })
    }

    /// Accounts available right now.
    pub fn available(&self) -> usize {
        self.inner.free.lock().len()
    }

    /// Creates `n` users now (no-op for existing accounts).
    pub async fn prefill(&self, n: u64) -> Result<(), ClientError> {
        let mut left = n;
        while left > 0 {
            let count = u32::try_from(left.min(u64::from(MAX_BATCH))).unwrap_or(MAX_BATCH);
            let _guard = self.inner.creating.lock().await;
            self.create(count).await?;
            left -= u64::from(count);
        }
        Ok(())
    }

    /// `n` accounts for one party.
    pub async fn take(&self, n: usize) -> Result<Vec<User>, ErrorKind> {
        match &self.inner.source {
            Source::Fixed { total } => {
                if n > *total {
                    return Err(ErrorKind::NoAccount);
                }
                loop {
                    let returned = self.inner.returned.notified();
                    tokio::pin!(returned);
                    returned.as_mut().enable();
                    if let Some(users) = self.pop(n) {
                        return Ok(users);
                    }
                    returned.await;
                }
            }
            Source::Create { batch, .. } => {
                let batch = *batch;
                loop {
                    if let Some(users) = self.pop(n) {
                        self.maybe_refill(batch);
                        return Ok(users);
                    }
                    let _guard = self.inner.creating.lock().await;
                    if self.available() >= n {
                        continue;
                    }
                    let want = batch.max(u32::try_from(n).unwrap_or(MAX_BATCH));
                    self.create(want).await.map_err(|e| ErrorKind::of(&e))?;
                }
            }
        }
    }

    /// Gives existing accounts back (created ones are dropped: never reused).
    pub fn give_back(&self, users: Vec<User>) {
        if self.reuses() && !users.is_empty() {
            self.inner.free.lock().extend(users);
            self.inner.returned.notify_waiters();
        }
    }

    fn pop(&self, n: usize) -> Option<Vec<User>> {
        let mut free = self.inner.free.lock();
        (free.len() >= n).then(|| free.drain(..n).collect())
    }

    /// Starts a background batch when the pool runs low.
    fn maybe_refill(&self, batch: u32) {
        if self.available() >= (batch as usize / 4).max(1) {
            return;
        }
        if self.inner.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            {
                let _guard = pool.inner.creating.lock().await;
                if pool.available() < batch as usize {
                    let _ = pool.create(batch).await;
                }
            }
            pool.inner.refilling.store(false, Ordering::Release);
        });
    }

    /// One creation call; the caller holds `creating`.
    async fn create(&self, count: u32) -> Result<(), ClientError> {
        let Source::Create {
            client,
            token,
            namespace,
            ..
        } = &self.inner.source
        else {
            return Ok(());
        };
        let started = Instant::now();
        let result = match token.get().await {
            Ok(token) => client.create_test_users(&token, namespace, count).await,
            Err(err) => Err(err),
        };
        let recorder = &self.inner.recorder;
        match result {
            Ok(created) => {
                recorder.call(Endpoint::CreateUsers, started.elapsed(), Ok(()));
                self.inner
                    .free
                    .lock()
                    .extend(created.into_iter().map(|u| User {
                        username: Arc::from(u.username),
                        password: Arc::from(u.password),
                    }));
                Ok(())
            }
            Err(err) => {
                recorder.call(
                    Endpoint::CreateUsers,
                    started.elapsed(),
                    Err(ErrorKind::of(&err)),
                );
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Collector;

    fn account(name: &str) -> Account {
        Account {
            username: Arc::from(name),
            password: Arc::from("pw"),
        }
    }

    #[tokio::test]
    async fn fixed_accounts_are_reused_and_waited_for() {
        let (_collector, recorders) = Collector::new(1);
        let pool = UserPool::fixed(vec![account("a"), account("b")], recorders[0].clone());
        assert!(pool.reuses());
        let two = pool.take(2).await.expect("two");
        assert_eq!(pool.take(3).await, Err(ErrorKind::NoAccount));
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.take(1).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        pool.give_back(two);
        let one = waiter.await.expect("task").expect("one");
        assert_eq!(&*one[0].username, "a");
        assert_eq!(pool.available(), 1);
        assert!(!format!("{:?}", one[0]).contains("pw"));
    }
}
