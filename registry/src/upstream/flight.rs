//! Single-flight: concurrent requests for the same content share one fetch.
//!
//! The first request for a key starts the work on a task of its own, so the work finishes
//! (and its result is stored) even when the client that asked first goes away; every request
//! for the key while it runs, the first included, waits for that one result.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use super::UpstreamError;

type Outcome<T> = Option<Result<T, UpstreamError>>;

/// The work in progress, by key.
pub(super) struct Flights<K, T> {
    running: Mutex<HashMap<K, watch::Receiver<Outcome<T>>>>,
}

impl<K, T> Default for Flights<K, T> {
    fn default() -> Self {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, T> Flights<K, T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, watch::Receiver<Outcome<T>>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a request started the shared work or joined it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// This request started the work.
    Leader,
    /// Another request's work was running; this one waited for its result.
    Waiter,
}

/// Removes the key when the work's task ends, however it ends (a panic included), so a
/// later request starts afresh instead of waiting on a finished flight.
struct Landing<K: Hash + Eq, T> {
    flights: Arc<Flights<K, T>>,
    key: Option<K>,
}

impl<K: Hash + Eq, T> Drop for Landing<K, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.flights.lock().remove(&key);
        }
    }
}

impl<K, T> Flights<K, T>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
{
    /// The result of `work` for `key`: `work` runs (on a task of its own) unless work for
    /// the same key is already running, whose result is then shared.
    pub(super) async fn run<W>(
        self: &Arc<Self>,
        key: K,
        work: W,
    ) -> (Result<T, UpstreamError>, Role)
    where
        W: Future<Output = Result<T, UpstreamError>> + Send + 'static,
    {
        let (mut receiver, role) = {
            let mut running = self.lock();
            if let Some(receiver) = running.get(&key) {
                (receiver.clone(), Role::Waiter)
            } else {
                let (sender, receiver) = watch::channel(None);
                running.insert(key.clone(), receiver.clone());
                let landing = Landing {
                    flights: Arc::clone(self),
                    key: Some(key),
                };
                tokio::spawn(async move {
                    let result = work.await;
                    sender.send_replace(Some(result));
                    drop(landing);
                });
                (receiver, Role::Leader)
            }
        };
        let result = match receiver.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Err(UpstreamError::Stopped)),
            Err(_closed) => Err(UpstreamError::Stopped),
        };
        (result, role)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_requests_share_one_run() {
        let flights: Arc<Flights<&'static str, u32>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let requests = (0..8).map(|_| {
            let runs = Arc::clone(&runs);
            let mut released = released.clone();
            flights.run("key", async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let _ = released.wait_for(|go| *go).await;
                Ok(7)
            })
        });
        // Each poll of `join!` polls both sides, and `join_all` polls all eight requests on
        // its first poll: the yield makes every request join before the release.
        let (results, ()) = tokio::join!(futures::future::join_all(requests), async {
            tokio::task::yield_now().await;
            release.send_replace(true);
        });
        assert!(results.iter().all(|(result, _)| *result == Ok(7)));
        let leaders = results
            .iter()
            .filter(|(_, role)| *role == Role::Leader)
            .count();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
        assert!(flights.lock().is_empty(), "a finished flight is removed");
    }

    #[tokio::test]
    async fn errors_are_shared_and_a_later_request_runs_again() {
        let flights: Arc<Flights<u8, u32>> = Arc::default();
        let failure = UpstreamError::BadRequest {
            message: "no".into(),
        };
        let expected = failure.clone();
        let (result, role) = flights.run(1, async move { Err(failure) }).await;
        assert_eq!((result, role), (Err(expected), Role::Leader));
        let (result, role) = flights.run(1, async { Ok(2) }).await;
        assert_eq!((result, role), (Ok(2), Role::Leader));
    }

    #[tokio::test]
    async fn a_panicking_run_fails_its_waiters_and_frees_the_key() {
        let flights: Arc<Flights<u8, u32>> = Arc::default();
        let (result, _) = flights.run(1, async { Ok(fail_work()) }).await;
        assert_eq!(result, Err(UpstreamError::Stopped));
        assert!(flights.lock().is_empty());
    }

    fn fail_work() -> u32 {
        panic!("the work failed")
    }
}
