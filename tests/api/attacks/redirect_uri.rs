//! redirect_uri attacks (RFC 9700 sections 2.1 and 4.1, RFC 6819 4.2.4):
//! only the exact registered URI is accepted (loopback URIs may change
//! port, RFC 8252 section 7.3), and an error about the client or the
//! redirect is shown as a page, never sent to the redirect_uri.
use crate::helpers::*;

const REGISTERED: &str = "https://client.example/cb";

/// A signed-in browser and an app registered for REGISTERED.
async fn setup() -> (TestApp, Browser, TestClient) {
    let app = spawn_app().await;
    let client = app
        .register_app(&[REGISTERED, "http://127.0.0.1/loopback"], "read")
        .await;
    app.create_user("alice", false).await;
    let browser = app.browser();
    let login = browser.login(&email("alice"), PASSWORD, "/").await;
    assert_eq!(login.status(), 302);
    (app, browser, client)
}

/// Asks for authorization with `redirect_uri`; asserts the answer is an
/// error page with no redirect anywhere.
async fn assert_refused_without_redirect(browser: &Browser, client: &TestClient, uri: &str) {
    let query = authorize_query(client, uri, "read", "st4te");
    let response = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(response.status(), 400, "{uri:?} was not refused");
    assert!(
        response.headers().get("location").is_none(),
        "{uri:?} was redirected"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("redirect"), "{uri:?}: {page}");
    assert!(!page.contains("code="), "{uri:?}: {page}");
}

/// Registering an app with `uri` is refused as invalid input.
async fn assert_cannot_register(app: &TestApp, uri: &str) {
    let response = app
        .http()
        .post(app.url("/api/v1/apps"))
        .json(&serde_json::json!({ "client_name": "sneaky", "redirect_uris": uri }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422, "{uri} was registered");
}

#[tokio::test]
async fn redirect_uri_unregistered_is_refused_with_a_page_not_a_redirect() {
    let (_app, browser, client) = setup().await;
    assert_refused_without_redirect(&browser, &client, "https://evil.example/cb").await;
    // And the registered one works, so the refusals above are about the URI.
    let query = authorize_query(&client, REGISTERED, "read", "s");
    assert_eq!(
        browser
            .get(&format!("/oauth/authorize?{query}"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn redirect_uri_prefix_and_suffix_tricks_are_refused() {
    let (_app, browser, client) = setup().await;
    for uri in [
        "https://client.example/cb/extra",
        "https://client.example/cbextra",
        "https://client.example/c",
        "https://client.example/",
        "https://client.example.evil.example/cb",
        "https://evil.example/https://client.example/cb",
        "https://client.example:8443/cb",
        "https://client.example/cb/",
        "http://client.example/cb",
        " https://client.example/cb",
        "https://client.example/cb ",
    ] {
        assert_refused_without_redirect(&browser, &client, uri).await;
    }
}

#[tokio::test]
async fn redirect_uri_case_changes_in_host_or_path_are_refused() {
    let (_app, browser, client) = setup().await;
    for uri in [
        "https://CLIENT.example/cb",
        "https://client.EXAMPLE/cb",
        "https://client.example/CB",
        "HTTPS://client.example/cb",
    ] {
        assert_refused_without_redirect(&browser, &client, uri).await;
    }
}

#[tokio::test]
async fn redirect_uri_with_userinfo_is_refused() {
    let (app, browser, client) = setup().await;
    for uri in [
        "https://client.example@evil.example/cb",
        "https://evil.example@client.example/cb",
        "https://client.example:x@evil.example/cb",
        "https://client.example%40evil.example/cb",
    ] {
        assert_refused_without_redirect(&browser, &client, uri).await;
    }
    // Nor can one be registered.
    assert_cannot_register(&app, "https://good.example@evil.example/cb").await;
}

#[tokio::test]
async fn redirect_uri_percent_encoded_and_dot_dot_semicolon_paths_are_refused() {
    let (_app, browser, client) = setup().await;
    for uri in [
        "https://client.example/cb/..;/evil",
        "https://client.example/cb/../evil",
        "https://client.example/cb/%2e%2e/evil",
        "https://client.example/cb%2f..%2fevil",
        "https://client.example/%63b",
        "https://client.example/cb%00",
        "https://client.example/cb%0d%0aSet-Cookie:%20x=y",
        "https://client.example\\@evil.example/cb",
        "https://client.example%2fcb@evil.example",
    ] {
        assert_refused_without_redirect(&browser, &client, uri).await;
    }
}

#[tokio::test]
async fn redirect_uri_with_a_fragment_is_refused() {
    let (app, browser, client) = setup().await;
    for uri in [
        "https://client.example/cb#",
        "https://client.example/cb#frag",
        "https://client.example/cb#@evil.example",
    ] {
        assert_refused_without_redirect(&browser, &client, uri).await;
    }
    // A fragment cannot be registered either (RFC 6749 section 3.1.2).
    assert_cannot_register(&app, "https://good.example/cb#x").await;
}

#[tokio::test]
async fn redirect_uri_extra_query_on_a_non_loopback_uri_is_refused() {
    let (_app, browser, client) = setup().await;
    for uri in [
        "https://client.example/cb?next=https://evil.example",
        "https://client.example/cb?",
        "http://127.0.0.1/loopback?x=1",
    ] {
        assert_refused_without_redirect(&browser, &client, uri).await;
    }
    // Loopback may change its port, and nothing else (RFC 8252 7.3).
    let query = authorize_query(&client, "http://127.0.0.1:53682/loopback", "read", "s");
    assert_eq!(
        browser
            .get(&format!("/oauth/authorize?{query}"))
            .await
            .status(),
        200
    );
    assert_refused_without_redirect(&browser, &client, "http://127.0.0.1:53682/other").await;
    assert_refused_without_redirect(&browser, &client, "http://localhost:53682/loopback").await;
}

#[tokio::test]
async fn client_errors_are_never_sent_to_the_redirect_uri() {
    let (_app, browser, client) = setup().await;
    // An unknown client with a redirect_uri an attacker controls.
    let unknown = TestClient {
        client_id: "no-such-client".into(),
        client_secret: String::new(),
        app_id: String::new(),
    };
    let query = authorize_query(&unknown, "https://evil.example/cb", "read", "s");
    let response = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert!(response.status().is_client_error());
    assert!(response.headers().get("location").is_none());
    // A missing client_id, and a valid client whose redirect is missing
    // while it has several registered: pages, not redirects.
    for query in [
        "response_type=code&redirect_uri=https%3A%2F%2Fclient.example%2Fcb".to_owned(),
        format!("response_type=code&client_id={}", client.client_id),
    ] {
        let response = browser.get(&format!("/oauth/authorize?{query}")).await;
        assert!(response.status().is_client_error(), "{query}");
        assert!(response.headers().get("location").is_none(), "{query}");
    }
}

#[tokio::test]
async fn login_next_parameter_is_not_an_open_redirect() {
    let app = spawn_app().await;
    app.create_user("alice", false).await;
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/%0d%0aLocation:%20https://evil.example",
    ] {
        let browser = app.browser();
        let response = browser.login(&email("alice"), PASSWORD, next).await;
        assert_eq!(response.status(), 302);
        let to = location(&response);
        let resolved = url::Url::parse("http://authd.test/x").unwrap().join(&to);
        assert_eq!(
            resolved.ok().and_then(|u| u.host_str().map(str::to_owned)),
            Some("authd.test".to_owned()),
            "{next:?} sent the browser to {to:?}"
        );
        assert!(!to.contains(['\r', '\n']), "{to:?}");
    }
}
