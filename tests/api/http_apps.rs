//! POST /api/v1/apps and GET /api/v1/apps/verify_credentials over HTTP.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const FIELD_ORDER: [&str; 10] = [
    "id",
    "name",
    "website",
    "scopes",
    "redirect_uris",
    "vapid_key",
    "redirect_uri",
    "client_id",
    "client_secret",
    "client_secret_expires_at",
];

/// Keys in document order (serde_json is built with preserve_order).
fn keys_in_order(raw: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(raw).expect("JSON object");
    value.as_object().expect("object").keys().cloned().collect()
}

#[tokio::test]
async fn register_app_with_json_answers_a_mastodon_credential_application_in_order() {
    let app = spawn_app().await;
    let response = app
        .http()
        .post(app.url("/api/v1/apps"))
        .json(&json!({"client_name": "your_app_name", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let raw = response.text().await.unwrap();
    let keys = keys_in_order(&raw);
    assert_eq!(keys, FIELD_ORDER, "{raw}");
    let body: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(body["name"], "your_app_name");
    assert_eq!(body["website"], Value::Null);
    assert_eq!(body["scopes"], json!(["read"]));
    assert_eq!(body["redirect_uris"], json!([OOB]));
    assert_eq!(body["redirect_uri"], OOB);
    assert_eq!(body["client_id"].as_str().unwrap().len(), 43);
    assert_eq!(body["client_secret"].as_str().unwrap().len(), 43);
    assert_eq!(body["client_secret_expires_at"], 0);
}

#[tokio::test]
async fn register_app_accepts_form_multipart_and_query_parameters() {
    let app = spawn_app().await;
    let form = app
        .http()
        .post(app.url("/api/v1/apps"))
        .form(&[
            ("client_name", "Form"),
            ("redirect_uris", OOB),
            ("scopes", "read write push"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    assert_eq!(
        form.json::<Value>().await.unwrap()["scopes"],
        json!(["read", "write", "push"])
    );

    let multipart = reqwest::multipart::Form::new()
        .text("client_name", "Test Application")
        .text("redirect_uris", OOB)
        .text("scopes", "read write push")
        .text("website", "https://myapp.example");
    let body: Value = app
        .http()
        .post(app.url("/api/v1/apps"))
        .multipart(multipart)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["name"], "Test Application");
    assert_eq!(body["website"], "https://myapp.example");

    let query = app
        .http()
        .post(app.url("/api/v1/apps?client_name=Query&redirect_uris=urn:ietf:wg:oauth:2.0:oob"))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 200);
    assert_eq!(
        query.json::<Value>().await.unwrap()["scopes"],
        json!(["read"])
    );
}

#[tokio::test]
async fn register_app_accepts_arrays_and_newline_separated_uris() {
    let app = spawn_app().await;
    let body: Value = app
        .http()
        .post(app.url("/api/v1/apps"))
        .json(&json!({
            "client_name": "Arrays",
            "redirect_uris": ["https://a.example/cb", "https://b.example/cb"],
            "scopes": ["read", "write"],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["scopes"],
        json!(["read", "write"]),
        "an array of scopes is not dropped"
    );
    assert_eq!(
        body["redirect_uri"],
        "https://a.example/cb\nhttps://b.example/cb"
    );
    let form: Value = app
        .http()
        .post(app.url("/api/v1/apps"))
        .form(&[
            ("client_name", "Lines"),
            (
                "redirect_uris",
                "https://a.example/cb\nhttps://b.example/cb",
            ),
            ("redirect_uris[]", "myapp://cb"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        form["redirect_uris"],
        json!(["https://a.example/cb", "https://b.example/cb", "myapp://cb"])
    );
}

#[tokio::test]
async fn register_app_validation_errors_are_422_in_mastodon_wording() {
    let app = spawn_app().await;
    for (body, wording) in [
        (
            json!({"redirect_uris": OOB}),
            "Validation failed: Name can't be blank",
        ),
        (
            json!({"client_name": "x"}),
            "Validation failed: Redirect URI can't be blank",
        ),
        (
            json!({"client_name": "x", "redirect_uris": "/relative"}),
            "Validation failed: Redirect URI must be an absolute URI.",
        ),
        (
            json!({"client_name": "x", "redirect_uris": OOB, "scopes": "read fly"}),
            "Validation failed: Scopes doesn't match configured on the server.",
        ),
    ] {
        let response = app
            .http()
            .post(app.url("/api/v1/apps"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "error": wording })
        );
    }
}

#[tokio::test]
async fn malformed_bodies_get_a_clear_400_never_a_500() {
    let app = spawn_app().await;
    let post = |ct: &'static str, body: Vec<u8>| {
        app.http()
            .post(app.url("/api/v1/apps"))
            .header("content-type", ct)
            .body(body)
    };
    for (ct, body, wording) in [
        (
            "application/json",
            b"{\"client_name\": ".to_vec(),
            "malformed",
        ),
        ("application/json", b"[1,2]".to_vec(), "must be an object"),
        (
            "application/json",
            br#"{"client_name": {"nested": true}}"#.to_vec(),
            "wrong type",
        ),
        (
            "application/json",
            format!("{{\"a\":{}}}", "[".repeat(5000)).into_bytes(),
            "nested too deeply",
        ),
        (
            "application/x-www-form-urlencoded",
            b"client_name=%FF%FE".to_vec(),
            "UTF-8",
        ),
        (
            "application/x-www-form-urlencoded",
            b"client_name=a&client_name=b".to_vec(),
            "more than once",
        ),
        ("text/plain", b"hello".to_vec(), "Unsupported Content-Type"),
        ("multipart/form-data", b"--x\r\n".to_vec(), "boundary"),
    ] {
        let response = post(ct, body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{ct} {wording}");
        let error = response.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(error.contains(wording), "{error} lacks {wording}");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let app = spawn_app().await;
    let huge = format!("client_name={}", "x".repeat(70 * 1024));
    let response = app
        .http()
        .post(app.url("/api/v1/apps"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("larger than 65536 bytes")
    );
}

#[tokio::test]
async fn verify_app_credentials_returns_the_application_without_secrets() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read write").await;
    let token = app
        .client_credentials(&client, "")
        .await
        .unwrap()
        .access_token;
    let response = app
        .http()
        .get(app.url("/api/v1/apps/verify_credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let raw = response.text().await.unwrap();
    assert_eq!(
        keys_in_order(&raw),
        [
            "id",
            "name",
            "website",
            "scopes",
            "redirect_uris",
            "vapid_key",
            "redirect_uri"
        ]
    );
    assert!(!raw.contains(&client.client_secret) && !raw.contains("client_id"));
    // Doorkeeper also reads the token from an access_token parameter.
    let by_param = app
        .http()
        .get(app.url(&format!(
            "/api/v1/apps/verify_credentials?access_token={token}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(by_param.status(), 200);
}

#[tokio::test]
async fn verify_app_credentials_401s_say_why_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let (client, _) = app.http_register(OOB, "read").await;
    let token = app
        .client_credentials(&client, "")
        .await
        .unwrap()
        .access_token;
    app.revoke(&client, &token).await.unwrap();
    for (bearer, message) in [
        (Some("forged"), "The access token is invalid"),
        (None, "The access token is invalid"),
        (Some(token.as_str()), "The access token was revoked"),
    ] {
        let mut request = app.http().get(app.url("/api/v1/apps/verify_credentials"));
        if let Some(b) = bearer {
            request = request.bearer_auth(b);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
            "{challenge}"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "error": message })
        );
    }
}

/// The JSON type of each field, as Mastodon 4.7's serializers give it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(a) if a.iter().all(Value::is_string) => "string[]",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn types_in_order(raw: &str) -> Vec<(String, &'static str)> {
    let value: Value = serde_json::from_str(raw).expect("JSON object");
    value
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| (k.clone(), json_type(v)))
        .collect()
}

fn typed(fields: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    fields.iter().map(|(k, t)| ((*k).to_owned(), *t)).collect()
}

/// REST::ApplicationSerializer (4.3+): id, name, website, scopes,
/// redirect_uris, then the deprecated vapid_key and redirect_uri.
const APPLICATION: [(&str, &str); 7] = [
    ("id", "string"),
    ("name", "string"),
    ("website", "string"),
    ("scopes", "string[]"),
    ("redirect_uris", "string[]"),
    ("vapid_key", "string"),
    ("redirect_uri", "string"),
];

#[tokio::test]
async fn the_credential_application_has_exactly_mastodons_keys_and_types() {
    let app = spawn_app().await;
    let response = app
        .http()
        .post(app.url("/api/v1/apps"))
        .form(&[
            ("client_name", "Typed"),
            (
                "redirect_uris",
                "https://a.example/cb\nhttps://b.example/cb",
            ),
            ("scopes", "read write:statuses"),
            ("website", "https://typed.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let raw = response.text().await.unwrap();
    // REST::CredentialApplicationSerializer adds these three.
    let mut expected = typed(&APPLICATION);
    expected.extend(typed(&[
        ("client_id", "string"),
        ("client_secret", "string"),
        ("client_secret_expires_at", "number"),
    ]));
    assert_eq!(types_in_order(&raw), expected, "{raw}");
    let body: Value = serde_json::from_str(&raw).unwrap();
    body["id"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .expect("the id is a number, sent as a string");
    assert_eq!(body["scopes"], json!(["read", "write:statuses"]));
    assert_eq!(
        body["redirect_uris"],
        json!(["https://a.example/cb", "https://b.example/cb"])
    );
    assert_eq!(
        body["redirect_uri"], "https://a.example/cb\nhttps://b.example/cb",
        "Doorkeeper's column, newline-joined"
    );
    assert_eq!(body["client_secret_expires_at"], json!(0));

    // A blank website is null (`website.presence`).
    let blank: Value = app
        .http()
        .post(app.url("/api/v1/apps"))
        .form(&[
            ("client_name", "Blank"),
            ("redirect_uris", OOB),
            ("website", ""),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(blank["website"], Value::Null);
}

/// Since 4.3 apps/verify_credentials needs a valid token and no scope: an
/// app token or a user token, whatever scopes it holds.
#[tokio::test]
async fn verify_app_credentials_answers_any_valid_token_without_a_scope() {
    let app = spawn_app().await;
    let registered: Value = app
        .http()
        .post(app.url("/api/v1/apps"))
        .form(&[
            ("client_name", "Any token"),
            ("redirect_uris", OOB),
            ("scopes", "read write push"),
            ("website", "https://any.example"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = TestClient {
        client_id: registered["client_id"].as_str().unwrap().into(),
        client_secret: registered["client_secret"].as_str().unwrap().into(),
        app_id: registered["id"].as_str().unwrap().into(),
    };
    let user = app.create_user("alice", false).await;
    let tokens = [
        (
            "app token, push only",
            app.client_credentials(&client, "push")
                .await
                .unwrap()
                .access_token,
        ),
        (
            "user token, write:statuses only",
            app.user_token(&user, &client, "write:statuses")
                .await
                .access_token,
        ),
        (
            "user token, read",
            app.user_token(&user, &client, "read").await.access_token,
        ),
    ];
    for (what, token) in tokens {
        let response = app
            .http()
            .get(app.url("/api/v1/apps/verify_credentials"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{what}");
        let raw = response.text().await.unwrap();
        assert_eq!(types_in_order(&raw), typed(&APPLICATION), "{what}: {raw}");
        let body: Value = serde_json::from_str(&raw).unwrap();
        for field in [
            "id",
            "name",
            "website",
            "scopes",
            "redirect_uris",
            "redirect_uri",
        ] {
            assert_eq!(body[field], registered[field], "{what}: {field}");
        }
    }
    let invalid = app
        .http()
        .get(app.url("/api/v1/apps/verify_credentials"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 401);
    assert_eq!(
        invalid.json::<Value>().await.unwrap(),
        json!({"error": "The access token is invalid"})
    );
}

#[tokio::test]
async fn collections_scopes_of_mastodon_4_6_are_registered_granted_and_advertised() {
    let app = spawn_app().await;
    let (client, body) = app
        .http_register(OOB, "read:collections write:collections")
        .await;
    assert_eq!(
        body["scopes"],
        json!(["read:collections", "write:collections"])
    );
    let token: Value = app
        .http()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.as_str()),
            ("scope", "write:collections read:collections"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["scope"], "read:collections write:collections");
    let meta: Value = app
        .http()
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let supported = meta["scopes_supported"].as_array().unwrap();
    assert!(supported.contains(&json!("read:collections")), "{meta}");
    assert!(supported.contains(&json!("write:collections")), "{meta}");
    assert!(!supported.contains(&json!("crypto")), "{meta}");
}

#[tokio::test]
async fn scopes_mastodon_4_7_does_not_know_are_refused_at_registration() {
    let app = spawn_app().await;
    for scopes in ["read crypto", "read:me", "read:circles", "write:circles"] {
        let response = app
            .http()
            .post(app.url("/api/v1/apps"))
            .json(&json!({"client_name": "x", "redirect_uris": OOB, "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{scopes}"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "error": "Validation failed: Scopes doesn't match configured on the server." })
        );
    }
}
