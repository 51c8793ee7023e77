//! `moby.buildkit.secrets.v1.Secrets`: the `registry-auth` secret, a Docker `config.json`
//! with a plain `auths` entry for every registry the user's config has credentials for, so
//! that the frontend's fetch steps (which have no credential helpers) can reach them.

use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::Secrets;
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use image::registry::auth::CredentialStore;
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};

/// The id the frontend mounts the registry credentials with.
pub const REGISTRY_AUTH_SECRET: &str = "registry-auth";

/// Serves [`REGISTRY_AUTH_SECRET`], generated on the first request and kept for the
/// session; any other id is NotFound.
pub(super) struct SecretsService {
    credentials: CredentialStore,
    registry_auth: OnceCell<Vec<u8>>,
}

impl std::fmt::Debug for SecretsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsService")
            .field("credentials", &self.credentials)
            .field(
                "registry_auth",
                &self.registry_auth.get().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl SecretsService {
    pub(super) fn new(credentials: CredentialStore) -> Self {
        SecretsService {
            credentials,
            registry_auth: OnceCell::new(),
        }
    }
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        if id != REGISTRY_AUTH_SECRET {
            return Err(Status::not_found(format!(
                "secret {id} not found: the build session has only {REGISTRY_AUTH_SECRET}"
            )));
        }
        let data = self
            .registry_auth
            .get_or_try_init(|| async {
                let store = self.credentials.clone();
                tokio::task::spawn_blocking(move || store.registry_auth_config())
                    .await
                    .map_err(|error| {
                        Status::internal(format!(
                            "building the {REGISTRY_AUTH_SECRET} secret failed: {error}"
                        ))
                    })?
                    .map_err(|error| {
                        Status::internal(format!(
                            "cannot build the {REGISTRY_AUTH_SECRET} secret: {error}"
                        ))
                    })
            })
            .await?;
        Ok(Response::new(GetSecretResponse { data: data.clone() }))
    }
}
