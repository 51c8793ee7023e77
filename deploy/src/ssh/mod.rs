//! SSH to the cluster hosts (russh): one authenticated connection per host, reused for every
//! command; host keys checked against a `known_hosts` file; commands run as `bash -c` with
//! their environment exported in the script text (and `sudo` when the user is not root);
//! stdin streamed from any `AsyncRead` with backpressure; every command logged through
//! `tracing` (target `deploy::ssh`) with its host and duration, never with secret values.
//!
//! ```no_run
//! # async fn example() -> Result<(), deploy::ssh::SshError> {
//! use deploy::ssh::{ConnectOptions, Connection, RemoteCommand, SshAuth, SshTarget};
//! let target = SshTarget::new("10.0.0.2".parse().unwrap(), "root", SshAuth::KeyFile {
//!     path: "/root/.ssh/id_ed25519".into(),
//!     passphrase: None,
//! });
//! let connection = Connection::connect(&target, &ConnectOptions::default()).await?;
//! let output = connection
//!     .run_checked(&RemoteCommand::new("echo $GREETING").env("GREETING", "hello"))
//!     .await?;
//! assert_eq!(output.stdout_text(), "hello\n");
//! # Ok(()) }
//! ```

mod auth;
mod command;
mod error;
mod known_hosts;
mod pool;
mod session;

pub use auth::{SshAuth, SshTarget};
pub use command::{CommandOutput, ExitStatus, RemoteCommand, quote};
pub use error::SshError;
pub use known_hosts::{HostKeyPolicy, default_known_hosts_path};
pub use pool::{Fleet, FleetError, for_each_limited};
pub use session::{ConnectOptions, Connection};
