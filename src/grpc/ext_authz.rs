//! Door 3: Envoy's external authorization (`envoy.service.auth.v3.Authorization/Check`,
//! the `envoy.filters.http.ext_authz` filter's gRPC service), a thin
//! adapter: Envoy's request becomes a [`door_request`], the decision is
//! rendered once by [`check_response`], and that rendering is put into
//! Envoy's `CheckResponse`.
//!
//! - Allowed: status OK, and an `ok_response` that sets the identity
//!   headers for the backend (overwriting any the client sent) and removes
//!   every `x-authd-*` header the client sent, so that a forged identity
//!   never reaches the backend.
//! - Denied: status UNAUTHENTICATED (401), PERMISSION_DENIED (403) or
//!   INVALID_ARGUMENT (400), and a `denied_response` with the HTTP status,
//!   the `www-authenticate` challenge and the JSON body for the client.
//! - Not decided (an [`AuthError`](crate::domain::error::AuthError), e.g.
//!   PostgreSQL unreachable on a cache miss): a gRPC error status, which
//!   Envoy configured with `failure_mode_allow: false` answers with a 403
//!   (its `status_on_error`), so the request never reaches the backend.
use std::collections::HashMap;

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction,
    HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::pb::google::rpc;
use tonic::{Code, Request, Response, Status};

use super::policy::{check_response, door_request, is_identity_header};
use crate::proto::v1;
use crate::service::AuthService;

pub struct ExtAuthzService {
    pub service: AuthService,
}

#[tonic::async_trait]
impl Authorization for ExtAuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let http = request
            .get_ref()
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let Some(http) = http else {
            return Err(Status::invalid_argument(
                "attributes.request.http is missing: not an HTTP request",
            ));
        };
        let headers = Headers::of(http);
        let method = http_method(http, &headers);
        let target = http_target(http, &headers);
        let decision = self
            .service
            .check_door(door_request(method, target, |name| headers.get(name)))
            .await?;
        Ok(Response::new(envoy_response(
            check_response(decision),
            &headers,
        )))
    }
}

/// The request's headers by lower-case name: Envoy's `headers` map, or
/// (with `encode_raw_headers`) its `header_map`, whose repeated names are
/// joined with "," as Envoy joins them in the map (so two Authorization
/// headers make one that is no token, never a choice of either).
struct Headers<'a> {
    map: &'a HashMap<String, String>,
    raw: HashMap<String, String>,
}

impl<'a> Headers<'a> {
    fn of(http: &'a HttpRequest) -> Headers<'a> {
        let mut raw: HashMap<String, String> = HashMap::new();
        if http.headers.is_empty()
            && let Some(header_map) = &http.header_map
        {
            for h in &header_map.headers {
                let value = if h.raw_value.is_empty() {
                    h.value.clone()
                } else {
                    String::from_utf8_lossy(&h.raw_value).into_owned()
                };
                raw.entry(h.key.to_ascii_lowercase())
                    .and_modify(|v| {
                        v.push(',');
                        v.push_str(&value);
                    })
                    .or_insert(value);
            }
        }
        Headers {
            map: &http.headers,
            raw,
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .or_else(|| self.raw.get(name))
            .map(String::as_str)
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().chain(self.raw.keys()).map(String::as_str)
    }
}

/// `method`, or the `:method` pseudo-header.
fn http_method<'a>(http: &'a HttpRequest, headers: &'a Headers<'_>) -> &'a str {
    if http.method.is_empty() {
        headers.get(":method").unwrap_or_default()
    } else {
        &http.method
    }
}

/// `path` (the request target, query included, not decoded), or the
/// `:path` pseudo-header.
fn http_target<'a>(http: &'a HttpRequest, headers: &'a Headers<'_>) -> &'a str {
    if http.path.is_empty() {
        headers.get(":path").unwrap_or_default()
    } else {
        &http.path
    }
}

/// A header to set, replacing any of that name. Both ways of saying so:
/// `append: false` for Envoys before `append_action`, which newer ones
/// read when `append` agrees with it.
#[allow(deprecated)]
fn header_option(name: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_owned(),
            value: value.to_owned(),
            ..Default::default()
        }),
        append: Some(BoolValue { value: false }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
        ..Default::default()
    }
}

fn status(code: Code, message: &str) -> Option<rpc::Status> {
    Some(rpc::Status {
        code: code as i32,
        message: message.to_owned(),
        details: Vec::new(),
    })
}

/// The door's rendering as Envoy's answer; `headers` are the client's, of
/// which every identity header is removed before the backend sees it.
fn envoy_response(rendered: v1::CheckResponse, headers: &Headers<'_>) -> CheckResponse {
    if rendered.http_status == 200 {
        let mut headers_to_remove: Vec<String> = headers
            .names()
            .filter(|name| is_identity_header(name))
            .map(str::to_owned)
            .collect();
        headers_to_remove.sort_unstable();
        headers_to_remove.dedup();
        return CheckResponse {
            status: status(Code::Ok, ""),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: rendered
                    .upstream_headers
                    .iter()
                    .map(|h| header_option(&h.name, &h.value))
                    .collect(),
                headers_to_remove,
                ..Default::default()
            })),
            ..Default::default()
        };
    }
    let code = match rendered.http_status {
        401 => Code::Unauthenticated,
        400 => Code::InvalidArgument,
        _ => Code::PermissionDenied,
    };
    let mut response_headers: Vec<HeaderValueOption> = rendered
        .response_headers
        .iter()
        .map(|h| header_option(&h.name, &h.value))
        .collect();
    response_headers.push(header_option("content-type", "application/json"));
    CheckResponse {
        status: status(code, &rendered.body),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::try_from(rendered.http_status).unwrap_or(403),
            }),
            headers: response_headers,
            body: rendered.body,
        })),
        ..Default::default()
    }
}
