//! `grpc.health.v1.Health`: the daemon checks the session every second (10 s deadline) and
//! ends it on any error, so Check must answer SERVING promptly.

use std::collections::BTreeSet;

use bollard_buildkit_proto::health::health_check_response::ServingStatus;
use bollard_buildkit_proto::health::health_server::Health;
use bollard_buildkit_proto::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use tonic::{Request, Response, Status};

/// Answers SERVING for the whole server (`service` empty) and for each served service.
pub(super) struct HealthService {
    services: BTreeSet<String>,
}

impl HealthService {
    /// A health service for a server serving these gRPC services (full names).
    pub(super) fn new(services: impl IntoIterator<Item = String>) -> Self {
        HealthService {
            services: services.into_iter().collect(),
        }
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &request.get_ref().service;
        if service.is_empty() || self.services.contains(service) {
            Ok(Response::new(HealthCheckResponse {
                status: ServingStatus::Serving.into(),
            }))
        } else {
            Err(Status::not_found(format!(
                "the build session does not serve {service}"
            )))
        }
    }

    async fn list(
        &self,
        _request: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented(
            "the build session answers Health/Check only",
        ))
    }

    type WatchStream = futures::stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented(
            "the build session answers Health/Check only",
        ))
    }
}
