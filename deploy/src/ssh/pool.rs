//! Many hosts at once: connections opened with bounded parallelism, errors kept per host.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use futures::stream::{self, StreamExt};

use super::auth::SshTarget;
use super::error::SshError;
use super::session::{ConnectOptions, Connection};

/// Runs `task` on every item, at most `limit` at a time (at least one), and returns the
/// results in the items' order.
pub async fn for_each_limited<I, T, E, F, Fut>(items: I, limit: usize, task: F) -> Vec<Result<T, E>>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    stream::iter(items)
        .map(task)
        .buffered(limit.max(1))
        .collect()
        .await
}

/// Connections to a set of hosts, keyed by `user@ip:port`.
#[derive(Clone, Default)]
pub struct Fleet {
    connections: BTreeMap<String, Connection>,
}

/// The hosts that failed, each with its own error.
#[derive(Debug)]
pub struct FleetError {
    /// One error per failed host, in the order the hosts were given.
    pub failures: Vec<SshError>,
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} host(s) failed:", self.failures.len())?;
        for failure in &self.failures {
            write!(f, "\n  - {failure}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FleetError {}

impl Fleet {
    /// Connects to every target, at most `limit` at a time. Fails with every host's error
    /// when any host fails (the connections that were made are closed).
    pub async fn connect(
        targets: &[SshTarget],
        options: &ConnectOptions,
        limit: usize,
    ) -> Result<Self, FleetError> {
        let results = for_each_limited(targets, limit, |target| {
            Connection::connect(target, options)
        })
        .await;
        let mut fleet = Self::default();
        let mut failures = Vec::new();
        for result in results {
            match result {
                Ok(connection) => {
                    fleet
                        .connections
                        .insert(connection.host().to_owned(), connection);
                }
                Err(error) => failures.push(error),
            }
        }
        if failures.is_empty() {
            Ok(fleet)
        } else {
            for connection in fleet.connections.values() {
                connection.close().await;
            }
            Err(FleetError { failures })
        }
    }

    /// The connection to a target, if the fleet has one.
    pub fn get(&self, target: &SshTarget) -> Option<&Connection> {
        self.connections.get(&target.label())
    }

    /// Every connection, ordered by `user@ip:port`.
    pub fn connections(&self) -> impl Iterator<Item = &Connection> {
        self.connections.values()
    }

    /// Runs `task` on every connection, at most `limit` at a time; returns each host's
    /// result keyed by `user@ip:port`.
    pub async fn for_each<T, F, Fut>(
        &self,
        limit: usize,
        mut task: F,
    ) -> BTreeMap<String, Result<T, SshError>>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = Result<T, SshError>>,
    {
        let hosts: Vec<String> = self.connections.keys().cloned().collect();
        let results = for_each_limited(self.connections.values(), limit, |connection| {
            task(connection.clone())
        })
        .await;
        hosts.into_iter().zip(results).collect()
    }

    /// Closes every connection.
    pub async fn close(&self) {
        for connection in self.connections.values() {
            connection.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::for_each_limited;

    #[tokio::test]
    async fn at_most_limit_tasks_run_at_once_and_results_keep_their_order() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let results = for_each_limited(0..20_u32, 3, |i| {
            let (running, peak) = (&running, &peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
                if i % 5 == 0 { Err(i) } else { Ok(i * 2) }
            }
        })
        .await;
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(results.len(), 20);
        assert_eq!(results[0], Err(0));
        assert_eq!(results[1], Ok(2));
        assert_eq!(results[19], Ok(38));
    }
}
