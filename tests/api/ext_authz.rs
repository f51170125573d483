//! Door 3: Envoy's ext_authz (`envoy.service.auth.v3.Authorization/Check`)
//! on authd's gRPC listener, called as Envoy calls it.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use envoy_types::ext_authz::v3::pb::{
    CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HttpResponse,
    OkHttpResponse,
};
use envoy_types::pb::envoy::config::core::v3::{
    Address, HeaderMap, HeaderValue, SocketAddress, address, socket_address,
};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::*;

fn peer(ip: &str, port: u32) -> Option<Peer> {
    Some(Peer {
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: ip.into(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }),
        ..Default::default()
    })
}

/// The CheckRequest Envoy sends for `method target` with `extra` headers
/// (an Authorization among them, or not): the shape of Envoy's docs, with
/// the pseudo-headers in the map.
fn envoy_request(method: &str, target: &str, extra: &[(&str, &str)]) -> CheckRequest {
    let mut headers: HashMap<String, String> = [
        (":authority", "social.example"),
        (":method", method),
        (":path", target),
        (":scheme", "https"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
        ("x-forwarded-proto", "https"),
        ("x-request-id", "6fd0b1a6-3e0b-4b7b-9f5e-0c1b2d3e4f50"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        headers.insert((*k).to_owned(), (*v).to_owned());
    }
    let query = target.split_once('?').map_or("", |(_, q)| q);
    CheckRequest {
        attributes: Some(AttributeContext {
            source: peer("203.0.113.7", 51234),
            destination: peer("10.0.0.2", 10000),
            request: Some(Request {
                http: Some(HttpRequest {
                    id: "10586744356424389487".into(),
                    method: method.into(),
                    headers,
                    path: target.into(),
                    host: "social.example".into(),
                    scheme: "https".into(),
                    query: query.into(),
                    protocol: "HTTP/1.1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn check(app: &TestApp, request: CheckRequest) -> CheckResponse {
    AuthorizationClient::new(app.channel.clone())
        .check(request)
        .await
        .expect("Check answers")
        .into_inner()
}

fn code(response: &CheckResponse) -> Code {
    Code::from(response.status.as_ref().expect("a status").code)
}

fn ok(response: &CheckResponse) -> &OkHttpResponse {
    match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("not an ok_response: {other:?}"),
    }
}

fn denied(response: &CheckResponse) -> &DeniedHttpResponse {
    match &response.http_response {
        Some(HttpResponse::DeniedResponse(denied)) => denied,
        other => panic!("not a denied_response: {other:?}"),
    }
}

fn http_status(denied: &DeniedHttpResponse) -> i32 {
    denied.status.as_ref().expect("an HTTP status").code
}

/// The response header `name`'s value, if there.
fn header<'a>(
    headers: &'a [envoy_types::ext_authz::v3::pb::HeaderValueOption],
    name: &str,
) -> Option<&'a str> {
    headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| h.value.as_str())
}

fn challenge(denied: &DeniedHttpResponse) -> &str {
    header(&denied.headers, "www-authenticate").expect("a www-authenticate challenge")
}

struct Fixture {
    app: TestApp,
    client: TestClient,
    user: TestUser,
    read: String,
}

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let client = app.register_app(&[OOB], "read write").await;
    let user = app.create_user("alice", false).await;
    let read = app.user_token(&user, &client, "read").await.access_token;
    Fixture {
        app,
        client,
        user,
        read,
    }
}

#[tokio::test]
async fn ext_authz_allows_a_read_token_with_identity_headers_and_strips_forged_ones() {
    let f = fixture().await;
    let auth = bearer(&f.read);
    let response = check(
        &f.app,
        envoy_request(
            "GET",
            "/api/v1/timelines/home?limit=20",
            &[
                ("authorization", &auth),
                ("x-authd-username", "root"),
                ("x-authd-scopes", "admin:write"),
            ],
        ),
    )
    .await;
    assert_eq!(code(&response), Code::Ok, "{response:?}");
    let ok = ok(&response);
    assert_eq!(
        header(&ok.headers, "x-authd-account-id"),
        Some(f.user.id.as_str())
    );
    assert_eq!(header(&ok.headers, "x-authd-username"), Some("alice"));
    assert_eq!(
        header(&ok.headers, "x-authd-client-id"),
        Some(f.client.client_id.as_str())
    );
    assert_eq!(header(&ok.headers, "x-authd-scopes"), Some("read"));
    for h in &ok.headers {
        assert_eq!(
            h.append_action,
            HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            "{h:?}"
        );
        #[allow(deprecated)]
        let append = h.append.as_ref().map(|a| a.value);
        assert_eq!(append, Some(false), "{h:?}");
    }
    assert!(
        ok.headers_to_remove
            .contains(&"x-authd-username".to_owned()),
        "{:?}",
        ok.headers_to_remove
    );
    assert!(ok.headers_to_remove.contains(&"x-authd-scopes".to_owned()));
    assert!(!ok.headers_to_remove.contains(&"authorization".to_owned()));
    // Metrics count the RPC under its own name, not "other".
    let row = "authd_grpc_requests_total{method=\"envoy.service.auth.v3.Authorization/Check\",code=\"Ok\"} ";
    let counted = || {
        let metrics = f.app.application().service().metrics().render();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(row))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let started = Instant::now();
    while counted() < 1.0 {
        assert!(started.elapsed() < Duration::from_secs(2), "no {row}row");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn ext_authz_reads_header_map_and_pseudo_headers_of_newer_envoys() {
    let f = fixture().await;
    let mut request = envoy_request("GET", "/api/v1/timelines/home", &[]);
    let http = request
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .unwrap();
    // encode_raw_headers: no map, no method or path fields; the
    // pseudo-headers and raw values only.
    http.headers.clear();
    http.method.clear();
    http.path.clear();
    let raw = |k: &str, v: &str| HeaderValue {
        key: k.into(),
        raw_value: v.as_bytes().to_vec(),
        ..Default::default()
    };
    http.header_map = Some(HeaderMap {
        headers: vec![
            raw(":method", "GET"),
            raw(":path", "/api/v1/timelines/home"),
            raw(":authority", "social.example"),
            raw("authorization", &bearer(&f.read)),
            raw("x-authd-account-id", "1"),
        ],
    });
    let response = check(&f.app, request.clone()).await;
    assert_eq!(code(&response), Code::Ok, "{response:?}");
    let ok = ok(&response);
    assert_eq!(header(&ok.headers, "x-authd-username"), Some("alice"));
    assert_eq!(ok.headers_to_remove, vec!["x-authd-account-id".to_owned()]);

    // Two Authorization headers are no token, not a choice of either.
    let http = request
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .unwrap();
    http.header_map
        .as_mut()
        .unwrap()
        .headers
        .push(raw("authorization", "Bearer forged"));
    let response = check(&f.app, request).await;
    assert_ne!(code(&response), Code::Ok, "{response:?}");
}

#[tokio::test]
async fn ext_authz_refuses_a_read_token_a_write_route_with_insufficient_scope() {
    let f = fixture().await;
    let auth = bearer(&f.read);
    let response = check(
        &f.app,
        envoy_request("POST", "/api/v1/statuses", &[("authorization", &auth)]),
    )
    .await;
    assert_eq!(code(&response), Code::PermissionDenied, "{response:?}");
    let denied = denied(&response);
    assert_eq!(http_status(denied), 403);
    let challenge = challenge(denied);
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("write:statuses"), "{challenge}");
    assert!(challenge.contains("scope=\""), "{challenge}");
    assert_eq!(
        header(&denied.headers, "content-type"),
        Some("application/json")
    );
    let body: serde_json::Value = serde_json::from_str(&denied.body).expect("a JSON body");
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn ext_authz_answers_401_without_a_token_and_for_an_unknown_one() {
    let f = fixture().await;
    let response = check(&f.app, envoy_request("GET", "/api/v1/timelines/home", &[])).await;
    assert_eq!(code(&response), Code::Unauthenticated, "{response:?}");
    let refusal = denied(&response);
    assert_eq!(http_status(refusal), 401);
    let bare = challenge(refusal);
    assert!(bare.starts_with("Bearer realm="), "{bare}");
    assert!(!bare.contains("error="), "{bare}");

    let response = check(
        &f.app,
        envoy_request(
            "GET",
            "/api/v1/timelines/home",
            &[("authorization", "Bearer no-such-token-at-all")],
        ),
    )
    .await;
    assert_eq!(code(&response), Code::Unauthenticated, "{response:?}");
    let denied = denied(&response);
    assert_eq!(http_status(denied), 401);
    assert!(
        challenge(denied).contains("error=\"invalid_token\""),
        "{}",
        challenge(denied)
    );
}

#[tokio::test]
async fn ext_authz_refuses_a_revoked_token_within_a_second() {
    let f = fixture().await;
    let auth = bearer(&f.read);
    let request = envoy_request("GET", "/api/v1/timelines/home", &[("authorization", &auth)]);
    // Cached as active first.
    assert_eq!(code(&check(&f.app, request.clone()).await), Code::Ok);
    f.app.revoke(&f.client, &f.read).await.expect("revoke");
    let revoked = Instant::now();
    loop {
        let response = check(&f.app, request.clone()).await;
        if code(&response) == Code::Unauthenticated {
            assert_eq!(http_status(denied(&response)), 401);
            assert!(challenge(denied(&response)).contains("error=\"invalid_token\""));
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(2),
            "still {response:?} 2 s after revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        revoked.elapsed() <= Duration::from_secs(1),
        "refused only after {:?}",
        revoked.elapsed()
    );
}

#[tokio::test]
async fn ext_authz_refuses_path_tricks_with_400() {
    let f = fixture().await;
    let auth = bearer(&f.read);
    for target in [
        "/api/v1/statuses/../timelines/home",
        "/api/v1/timelines%2Fhome",
        "/api/v1//timelines/home",
        "/api/v1/timelines/home;x=1",
    ] {
        let response = check(
            &f.app,
            envoy_request("GET", target, &[("authorization", &auth)]),
        )
        .await;
        assert_eq!(
            code(&response),
            Code::InvalidArgument,
            "{target}: {response:?}"
        );
        assert_eq!(http_status(denied(&response)), 400, "{target}");
    }
}

#[tokio::test]
async fn ext_authz_passes_a_public_route_without_identity_and_refuses_an_unmatched_one() {
    let f = fixture().await;
    let response = check(
        &f.app,
        envoy_request("GET", "/api/v2/instance", &[("x-authd-account-id", "1")]),
    )
    .await;
    assert_eq!(code(&response), Code::Ok, "{response:?}");
    let ok = ok(&response);
    assert!(ok.headers.is_empty(), "{:?}", ok.headers);
    assert_eq!(ok.headers_to_remove, vec!["x-authd-account-id".to_owned()]);

    let auth = bearer(&f.read);
    let response = check(
        &f.app,
        envoy_request("GET", "/api/v1/no-such-api", &[("authorization", &auth)]),
    )
    .await;
    assert_eq!(code(&response), Code::PermissionDenied, "{response:?}");
    assert_eq!(http_status(denied(&response)), 403);
}

#[tokio::test]
async fn ext_authz_without_an_http_request_is_invalid_argument() {
    let f = fixture().await;
    let status = AuthorizationClient::<Channel>::new(f.app.channel.clone())
        .check(CheckRequest::default())
        .await
        .expect_err("no HTTP attributes");
    assert_eq!(status.code(), Code::InvalidArgument);
}
