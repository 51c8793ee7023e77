//! The Control service: one Solve while following its Status stream.

use std::collections::HashMap;
use std::time::Duration;

use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use bollard_buildkit_proto::moby::buildkit::v1::{SolveRequest, StatusRequest, StatusResponse};
use tonic::transport::Channel;

use crate::error::{ClientError, Result};

/// The largest message accepted from BuildKit (Status updates with many logs).
const MAX_DECODING_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// How long the Status stream may keep going after the Solve returned (as buildctl does).
const STATUS_DRAIN: Duration = Duration::from_secs(3);
/// How often a Status call that raced ahead of the Solve's registration is retried.
const STATUS_ATTEMPTS: usize = 3;
/// What BuildKit puts before a frontend's error.
const FRONTEND_ERROR_PREFIX: &str = "failed to solve with frontend gateway.v0: ";
/// What grpc-go puts before a forwarded error.
const RPC_ERROR_PREFIX: &str = "rpc error: code = ";

/// A Control client accepting messages up to 64 MiB.
pub fn control_client(channel: Channel) -> ControlClient<Channel> {
    ControlClient::new(channel).max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
}

/// Runs one Solve while following its Status stream; every StatusResponse goes to `on_status`.
/// Returns the SolveResponse's exporter_response map. A failed solve returns an error whose text
/// has the "failed to solve with frontend gateway.v0: rpc error: code = Unknown desc = " prefix stripped.
///
/// The Status stream is opened at the same time as the Solve (BuildKit waits up to 3 s for the
/// job to appear); its failures only end the progress, never the build. After the Solve
/// returns, the Status stream gets up to 3 s to deliver its last updates.
pub async fn solve(
    client: &mut ControlClient<Channel>,
    request: SolveRequest,
    on_status: &mut (dyn FnMut(&StatusResponse) + Send),
) -> Result<HashMap<String, String>> {
    let status_client = client.clone();
    let reference = request.r#ref.clone();
    let status = follow_status(status_client, reference, on_status);
    tokio::pin!(status);
    let solve = client.solve(request);
    tokio::pin!(solve);

    let mut status_ended = false;
    let outcome = loop {
        tokio::select! {
            outcome = &mut solve => break outcome,
            () = &mut status, if !status_ended => status_ended = true,
        }
    };
    if !status_ended {
        // A Status stream that does not end in time only loses its last updates.
        let _ = tokio::time::timeout(STATUS_DRAIN, &mut status).await;
    }
    match outcome {
        Ok(response) => Ok(response.into_inner().exporter_response),
        Err(status) => Err(ClientError::Solve {
            message: solve_error_text(&status),
        }),
    }
}

/// Feeds every StatusResponse of `reference` to `on_status` until the stream ends or fails.
async fn follow_status(
    mut client: ControlClient<Channel>,
    reference: String,
    on_status: &mut (dyn FnMut(&StatusResponse) + Send),
) {
    for _ in 0..STATUS_ATTEMPTS {
        let request = StatusRequest {
            r#ref: reference.clone(),
        };
        let mut stream = match client.status(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if is_missing_job(&status) => continue,
            Err(_) => return,
        };
        let mut received_any = false;
        loop {
            match stream.message().await {
                Ok(Some(response)) => {
                    received_any = true;
                    on_status(&response);
                }
                Err(status) if !received_any && is_missing_job(&status) => break,
                Ok(None) | Err(_) => return,
            }
        }
    }
}

/// BuildKit's answer when Status comes before the Solve registered its job.
fn is_missing_job(status: &tonic::Status) -> bool {
    status.message().contains("no such job")
}

/// The Solve's error without the gRPC wrapping, e.g. "Kubefile:3:1: unknown instruction".
pub(crate) fn solve_error_text(status: &tonic::Status) -> String {
    let message = status.message().trim();
    if message.is_empty() {
        return format!("the Solve failed with gRPC status {:?}", status.code());
    }
    let mut text = message
        .strip_prefix(FRONTEND_ERROR_PREFIX)
        .unwrap_or(message);
    while let Some(rest) = text.strip_prefix(RPC_ERROR_PREFIX) {
        match rest.split_once(" desc = ") {
            Some((_code, description)) => text = description,
            None => break,
        }
    }
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontend_errors_lose_their_wrapping() {
        let status = tonic::Status::unknown(
            "failed to solve with frontend gateway.v0: rpc error: code = Unknown desc = Kubefile:3:1: unknown instruction FOO",
        );
        assert_eq!(
            solve_error_text(&status),
            "Kubefile:3:1: unknown instruction FOO"
        );
    }

    #[test]
    fn other_errors_stay_as_they_are() {
        let status = tonic::Status::unknown("failed to compute cache key: \"/x\" not found");
        assert_eq!(
            solve_error_text(&status),
            "failed to compute cache key: \"/x\" not found"
        );
        let status = tonic::Status::unknown("rpc error: code = NotFound desc = no such image");
        assert_eq!(solve_error_text(&status), "no such image");
        let status = tonic::Status::unavailable("");
        assert_eq!(
            solve_error_text(&status),
            "the Solve failed with gRPC status Unavailable"
        );
    }
}
