//! Extractors that read a request's parameters (query and body, within the
//! configured size limit) and reject bad input in the error shape of the
//! endpoint's surface.
use std::marker::PhantomData;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{HttpError, Surface};
use super::params::Params;
use super::state::ShimState;
use crate::domain::client_auth::ClientAuthMethod;
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
    /// The client's authentication method is read from the headers, so
    /// that an invalid_client is challenged as RFC 6749 section 5.2 says.
    pub fn error(&self, error: AuthError) -> HttpError {
        HttpError::new(error, S::SURFACE).with_client_auth(client_auth_method(&self.headers))
    }

    /// The endpoint's parameters as its own struct (see `Params::read`),
    /// refused in this endpoint's shape.
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        self.params.read().map_err(|e| self.error(e))
    }

    /// The form's CSRF token checked against its cookie and the request's
    /// origin, refused in this endpoint's shape.
    pub fn verify_csrf(&self, submitted: &str) -> Result<(), HttpError> {
        super::cookies::verify_csrf(&self.headers, submitted).map_err(|e| self.error(e))
    }

    /// The bearer token (see [`bearer_token`]), refused in this endpoint's
    /// shape.
    pub fn bearer_token(&self) -> Result<String, HttpError> {
        bearer_token(self).map_err(|e| self.error(e))
    }

    /// The core's answer, or its error in this endpoint's shape.
    pub fn answer<T>(
        &self,
        result: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T, HttpError> {
        super::state::from_core(result).map_err(|e| self.error(e))
    }
}

/// Why a request's input was refused.
pub struct InputRejection {
    error: HttpError,
    /// A status other than the error's own: 413 for a body over the limit,
    /// 408 for one that did not arrive in time.
    status: Option<StatusCode>,
}

impl IntoResponse for InputRejection {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if let Some(status) = self.status {
            *response.status_mut() = status;
        }
        response
    }
}

impl<S: SurfaceKind> FromRequest<ShimState> for Input<S> {
    type Rejection = InputRejection;

    async fn from_request(request: Request, state: &ShimState) -> Result<Self, Self::Rejection> {
        let reject = |error: AuthError, status: Option<StatusCode>| InputRejection {
            // Never an invalid_client: no challenge to choose.
            error: HttpError::new(error, S::SURFACE),
            status,
        };
        let (parts, body) = request.into_parts();
        let bytes = read_body(body, state)
            .await
            .map_err(|(error, status)| reject(error, Some(status)))?;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let params =
            Params::parse(parts.uri.query(), content_type, &bytes).map_err(|e| reject(e, None))?;
        Ok(Input {
            params,
            headers: parts.headers,
            surface: PhantomData,
        })
    }
}

/// How the request's client authenticated (see [`ClientAuthMethod::of`]).
/// A request body, read within the shim's body limit and request timeout,
/// as every route reads its body; or the error and status to answer.
pub async fn read_body(
    body: axum::body::Body,
    state: &ShimState,
) -> Result<axum::body::Bytes, (AuthError, StatusCode)> {
    let limit = state.config().body_limit;
    let deadline = state.config().request_timeout;
    match crate::deadline::within(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err((
            AuthError::invalid_request(format!("The request body is larger than {limit} bytes.")),
            StatusCode::PAYLOAD_TOO_LARGE,
        )),
        Err(_) => {
            tracing::info!(timeout = ?deadline, "request body did not arrive in time");
            Err((
                AuthError::invalid_request(format!(
                    "The request body did not arrive within {}.",
                    humantime::format_duration(deadline)
                )),
                StatusCode::REQUEST_TIMEOUT,
            ))
        }
    }
}

fn client_auth_method(headers: &HeaderMap) -> ClientAuthMethod {
    ClientAuthMethod::of(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
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
        return bounded(token.trim().to_owned());
    }
    let AccessTokenParam { access_token } = input.params.read()?;
    bounded(access_token)
}

/// A token sent as a parameter rather than in the Authorization header.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct AccessTokenParam {
    access_token: String,
}

/// A token longer than any authd issues is refused here, as the core
/// would refuse it, rather than sent on in a message the core's size
/// limit refuses undecoded.
fn bounded(token: String) -> Result<String, AuthError> {
    if token.len() > crate::service::bearer::MAX_TOKEN_LEN {
        return Err(AuthError::invalid_token());
    }
    Ok(token)
}

/// The client's address, for the core's per-address rate limits: the
/// connection's peer, or what a trusted proxy says it forwarded for.
/// Only the endpoints that are rate limited (login, app registration) ask
/// for it, so no other request pays for resolving it.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress
where
    ShimState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // No connection info, no address: then nothing is believed.
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(ClientAddress(None));
        };
        let forwarded = parts
            .headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let shim = ShimState::from_ref(state);
        let trusted = &shim.config().trusted_proxies;
        Ok(ClientAddress(
            trusted.client_ip(Some(peer.ip()), Some(&forwarded)),
        ))
    }
}

impl ClientAddress {
    /// Names the address to the core, in the metadata it reads it from.
    pub fn forward<T>(&self, mut request: tonic::Request<T>) -> tonic::Request<T> {
        if let Some(value) = self.0.and_then(|ip| ip.to_string().parse().ok()) {
            request.metadata_mut().insert(X_FORWARDED_FOR, value);
        }
        request
    }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";
