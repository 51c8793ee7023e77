//! `moby.filesync.v1.Auth`: registry credentials for the daemon's pulls (frontend image,
//! base images), from the user's Docker config. Only `Credentials` is served; without
//! `GetTokenAuthority` the daemon fetches registry tokens itself with those credentials
//! (BuildKit v0.8 `util/resolver/authorizer.go`).

use bollard_buildkit_proto::moby::filesync::v1::auth_server::Auth;
use bollard_buildkit_proto::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use image::registry::auth::{CredentialStore, Credentials};
use tonic::{Request, Response, Status};

/// Answers `Credentials` from a credential store; the token methods are unimplemented.
#[derive(Debug)]
pub(super) struct AuthService {
    credentials: CredentialStore,
}

impl AuthService {
    pub(super) fn new(credentials: CredentialStore) -> Self {
        AuthService { credentials }
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let host = request.into_inner().host;
        let store = self.credentials.clone();
        // Reading the config and running credential helpers blocks.
        let lookup_host = host.clone();
        let found = tokio::task::spawn_blocking(move || store.credentials_for(&lookup_host))
            .await
            .map_err(|error| {
                Status::internal(format!("looking up credentials for {host} failed: {error}"))
            })?
            .map_err(|error| {
                Status::internal(format!("cannot get credentials for {host}: {error}"))
            })?;
        Ok(Response::new(match found {
            Credentials::Anonymous => CredentialsResponse::default(),
            Credentials::Basic { username, password } => CredentialsResponse {
                username,
                secret: password,
            },
        }))
    }

    async fn fetch_token(
        &self,
        _request: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented(
            "the build session gives credentials only (Auth/Credentials)",
        ))
    }

    async fn get_token_authority(
        &self,
        _request: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented(
            "the build session gives credentials only (Auth/Credentials)",
        ))
    }

    async fn verify_token_authority(
        &self,
        _request: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented(
            "the build session gives credentials only (Auth/Credentials)",
        ))
    }
}
