//! Helpers shared by the test binaries: the API tests (tests/api, in-process
//! authd) and the fault tests (tests/faults.rs, authd as processes). Each
//! takes the channel it calls, so that it serves both.
// Each binary uses some of these, none all of them.
#![allow(dead_code)]

use authd::proto::v1;
use authd::proto::v1::apps_client::AppsClient;
use authd::proto::v1::o_auth_client::OAuthClient;
use authd::proto::v1::sessions_client::SessionsClient;
use tonic::Status;
use tonic::transport::Channel;

pub const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";
pub const PASSWORD: &str = "correct horse battery staple";

/// A registered application with its credentials.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub client_id: String,
    pub client_secret: String,
    pub app_id: String,
}

pub async fn register_app(channel: &Channel, redirect_uris: &[&str], scopes: &str) -> TestClient {
    register_app_with(
        channel,
        v1::RegisterAppRequest {
            client_name: "Test App".into(),
            redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.into(),
            ..Default::default()
        },
    )
    .await
}

pub async fn register_app_with(channel: &Channel, request: v1::RegisterAppRequest) -> TestClient {
    let r = AppsClient::new(channel.clone())
        .register_app(request)
        .await
        .expect("register app")
        .into_inner();
    TestClient {
        client_id: r.client_id,
        client_secret: r.client_secret,
        app_id: r.app.expect("app").id,
    }
}

pub async fn login(
    channel: &Channel,
    email: &str,
    password: &str,
) -> Result<v1::LoginResponse, Status> {
    SessionsClient::new(channel.clone())
        .login(v1::LoginRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

pub async fn client_credentials(
    channel: &Channel,
    client: &TestClient,
    scope: &str,
) -> Result<v1::TokenResponse, Status> {
    OAuthClient::new(channel.clone())
        .exchange_token(v1::ExchangeTokenRequest {
            grant_type: "client_credentials".into(),
            client_id: client.client_id.clone(),
            client_secret: client.client_secret.clone(),
            scope: scope.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

pub async fn introspect(
    channel: &Channel,
    caller: &TestClient,
    token: &str,
) -> Result<v1::IntrospectResponse, Status> {
    OAuthClient::new(channel.clone())
        .introspect(v1::IntrospectRequest {
            token: token.into(),
            client_id: caller.client_id.clone(),
            client_secret: caller.client_secret.clone(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Whether introspection calls `token` active.
pub async fn is_active(
    channel: &Channel,
    caller: &TestClient,
    token: &str,
) -> Result<bool, Status> {
    Ok(introspect(channel, caller, token).await?.active == Some(true))
}

pub async fn revoke(
    channel: &Channel,
    caller: &TestClient,
    token: &str,
) -> Result<v1::RevokeResponse, Status> {
    OAuthClient::new(channel.clone())
        .revoke(v1::RevokeRequest {
            token: token.into(),
            client_id: caller.client_id.clone(),
            client_secret: caller.client_secret.clone(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\""),
    )
}
