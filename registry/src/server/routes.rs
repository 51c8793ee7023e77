//! The routes of the v2 API, recognized from the raw request path (never percent-decoded, so
//! `%2e%2e` stays text that no repository name accepts).

/// What a request path asks for. Names and references are the raw path parts; they are
/// validated before use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags {
        /// The repository.
        name: &'a str,
    },
    /// `/v2/<name>/manifests/<reference>`
    Manifest {
        /// The repository.
        name: &'a str,
        /// A tag or digest.
        reference: &'a str,
    },
    /// `/v2/<name>/blobs/<digest>`
    Blob {
        /// The repository.
        name: &'a str,
        /// The digest.
        digest: &'a str,
    },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart {
        /// The repository.
        name: &'a str,
    },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload {
        /// The repository.
        name: &'a str,
        /// The upload id.
        id: &'a str,
    },
    /// `/healthz`
    Health,
    /// `/metrics`
    Metrics,
    /// Anything else.
    NotFound,
}

/// The route of a request path (without its query).
pub fn route(path: &str) -> Route<'_> {
    match path {
        "/healthz" => return Route::Health,
        "/metrics" => return Route::Metrics,
        "/v2" | "/v2/" => return Route::Base,
        "/v2/_catalog" => return Route::Catalog,
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Route::NotFound;
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Route::Tags { name };
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Route::UploadStart { name };
    }
    let Some((head, last)) = rest.rsplit_once('/') else {
        return Route::NotFound;
    };
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        return Route::Upload { name, id: last };
    }
    if let Some(name) = head.strip_suffix("/manifests") {
        return Route::Manifest {
            name,
            reference: last,
        };
    }
    if let Some(name) = head.strip_suffix("/blobs") {
        return Route::Blob { name, digest: last };
    }
    Route::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_the_api() {
        assert_eq!(route("/v2/"), Route::Base);
        assert_eq!(route("/v2/_catalog"), Route::Catalog);
        assert_eq!(route("/healthz"), Route::Health);
        assert_eq!(route("/v2/a/b/tags/list"), Route::Tags { name: "a/b" });
        assert_eq!(
            route("/v2/a/manifests/v1"),
            Route::Manifest {
                name: "a",
                reference: "v1"
            }
        );
        assert_eq!(
            route("/v2/a/manifests/manifests/v1"),
            Route::Manifest {
                name: "a/manifests",
                reference: "v1"
            }
        );
        assert_eq!(
            route("/v2/a/blobs/sha256:00"),
            Route::Blob {
                name: "a",
                digest: "sha256:00"
            }
        );
        assert_eq!(
            route("/v2/a/b/blobs/uploads/"),
            Route::UploadStart { name: "a/b" }
        );
        assert_eq!(
            route("/v2/a/b/blobs/uploads"),
            Route::UploadStart { name: "a/b" }
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/123"),
            Route::Upload {
                name: "a",
                id: "123"
            }
        );
        assert_eq!(
            route("/v2/../x/manifests/1"),
            Route::Manifest {
                name: "../x",
                reference: "1"
            }
        );
        for path in ["/", "/v1/", "/v2/a", "/v2/a/b", "/other/manifests/x"] {
            assert_eq!(route(path), Route::NotFound, "{path}");
        }
    }
}
