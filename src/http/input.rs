//! Extractors that read a request's parameters (query and body, within the
//! configured size limit) and reject bad input in the error shape of the
//! endpoint's surface.
use std::marker::PhantomData;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{HttpError, Surface};
use super::params::Params;
use super::state::ShimState;
use crate::domain::error::AuthError;

pub trait SurfaceKind: Send + Sync + 'static {
    const SURFACE: Surface;
}

pub struct OAuthSurface;
pub struct ApiSurface;
pub struct PageSurface;

impl SurfaceKind for OAuthSurface {
    const SURFACE: Surface = Surface::OAuth;
}
impl SurfaceKind for ApiSurface {
    const SURFACE: Surface = Surface::Api;
}
impl SurfaceKind for PageSurface {
    const SURFACE: Surface = Surface::Page;
}

/// A request's parameters and headers.
pub struct Input<S: SurfaceKind> {
    pub params: Params,
    pub headers: HeaderMap,
    surface: PhantomData<S>,
}

pub type OAuthInput = Input<OAuthSurface>;
pub type ApiInput = Input<ApiSurface>;
pub type PageInput = Input<PageSurface>;

impl<S: SurfaceKind> Input<S> {
    /// An error in this endpoint's shape.
    pub fn error(&self, error: AuthError) -> HttpError {
        HttpError {
            error,
            surface: S::SURFACE,
        }
    }
}

/// Why a request's input was refused.
pub struct InputRejection {
    error: HttpError,
    too_large: bool,
}

impl IntoResponse for InputRejection {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if self.too_large {
            *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        }
        response
    }
}

impl<S: SurfaceKind> FromRequest<ShimState> for Input<S> {
    type Rejection = InputRejection;

    async fn from_request(request: Request, state: &ShimState) -> Result<Self, Self::Rejection> {
        let reject = |error: AuthError, too_large: bool| InputRejection {
            error: HttpError {
                error,
                surface: S::SURFACE,
            },
            too_large,
        };
        let (parts, body) = request.into_parts();
        let limit = state.config().body_limit;
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            reject(
                AuthError::invalid_request(format!(
                    "The request body is larger than {limit} bytes."
                )),
                true,
            )
        })?;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let params =
            Params::parse(parts.uri.query(), content_type, &bytes).map_err(|e| reject(e, false))?;
        Ok(Input {
            params,
            headers: parts.headers,
            surface: PhantomData,
        })
    }
}

/// The bearer token of an API call: the Authorization header, else the
/// `access_token` parameter (as Doorkeeper reads it).
pub fn bearer_token<S: SurfaceKind>(input: &Input<S>) -> Result<String, AuthError> {
    if let Some(value) = input
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = value.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Ok(token.trim().to_owned());
    }
    input.params.string("access_token")
}
