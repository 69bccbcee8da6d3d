//! Bounded password work: every argon2 hash and check of the manager (administrators'
//! logins and passwords, LOCAL realm users) runs behind one semaphore of
//! [`HASHING_PERMITS`] permits, on as many dedicated threads, each with the fixed cost
//! of [`crate::db::PasswordHash`] (argon2id, 19 MiB). A flood of wrong passwords
//! therefore queues instead of taking the manager's memory: at most `HASHING_PERMITS` ×
//! 19 MiB are in use for passwords at any time, however many requests wait. The threads
//! are always the same ones (not the blocking pool's, which come and go), so the
//! allocator keeps at most their few arenas' worth of freed argon2 memory.
//!
//! A login for a name that does not exist checks the password against a dummy hash
//! ([`verify_unknown`]), so known and unknown names cost the same time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{LazyLock, Mutex};

use tokio::sync::{Semaphore, oneshot};

use crate::db::{PasswordError, PasswordHash};

/// How many argon2 computations may run at once.
pub const HASHING_PERMITS: usize = 2;

static PERMITS: Semaphore = Semaphore::const_new(HASHING_PERMITS);
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// A hash of a password nobody has, with the same parameters as real ones.
static DUMMY: LazyLock<Option<PasswordHash>> =
    LazyLock::new(|| PasswordHash::new("no administrator has this password").ok());

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("the password task ended unexpectedly")]
    Task,
}

type Job = Box<dyn FnOnce() + Send>;

/// The queue of the [`HASHING_PERMITS`] password threads, started on first use.
static WORKERS: LazyLock<Option<Mutex<mpsc::Sender<Job>>>> = LazyLock::new(|| {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = std::sync::Arc::new(Mutex::new(receiver));
    for i in 0..HASHING_PERMITS {
        let receiver = std::sync::Arc::clone(&receiver);
        let started = std::thread::Builder::new()
            .name(format!("password-{i}"))
            .spawn(move || {
                loop {
                    let job = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if started.is_err() {
            return None;
        }
    }
    Some(Mutex::new(sender))
});

/// Runs `work` on a password thread once a permit is free.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashingError> {
    let _permit = PERMITS.acquire().await.map_err(|_| HashingError::Task)?;
    let (done, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        MOST_RUNNING.fetch_max(now, Ordering::SeqCst);
        let result = work();
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        let _ = done.send(result);
    });
    {
        let sender = WORKERS
            .as_ref()
            .ok_or(HashingError::Task)?
            .lock()
            .map_err(|_| HashingError::Task)?;
        sender.send(job).map_err(|_| HashingError::Task)?;
    }
    result.await.map_err(|_| HashingError::Task)
}

/// The argon2 hash of `password`.
pub async fn hash(password: &str) -> Result<PasswordHash, HashingError> {
    let password = password.to_owned();
    Ok(bounded(move || PasswordHash::new(&password)).await??)
}

/// Whether `password` matches `hash`.
pub async fn verify(hash: &PasswordHash, password: &str) -> Result<bool, HashingError> {
    let (hash, password) = (hash.clone(), password.to_owned());
    bounded(move || hash.verify(&password)).await
}

/// Spends the time of a real check on a name that has no account; always `false`.
pub async fn verify_unknown(password: &str) -> Result<bool, HashingError> {
    let password = password.to_owned();
    bounded(move || {
        if let Some(dummy) = DUMMY.as_ref() {
            let _ = dummy.verify(&password);
        }
        false
    })
    .await
}

/// The most argon2 computations that ever ran at once in this process.
pub fn most_running_at_once() -> usize {
    MOST_RUNNING.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn twelve_parallel_password_checks_never_run_more_than_the_permits_at_once() {
        let hash = hash("correct horse battery").await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..12 {
            let hash = hash.clone();
            tasks.spawn(async move {
                if i % 2 == 0 {
                    verify(&hash, "wrong").await.unwrap()
                } else {
                    verify_unknown("wrong").await.unwrap()
                }
            });
        }
        while let Some(result) = tasks.join_next().await {
            assert!(!result.unwrap());
        }
        assert!(verify(&hash, "correct horse battery").await.unwrap());
        let most = most_running_at_once();
        assert!(
            (1..=HASHING_PERMITS).contains(&most),
            "{most} argon2 computations ran at once"
        );
    }
}
