//! TLS on both listeners, client certificates on the gRPC port, the remote
//! shim and the health check over TLS, and the start-up errors of bad
//! certificate files. Certificates are made at test time with rcgen: a CA,
//! a server certificate for 127.0.0.1 and localhost, a client certificate
//! from that CA, and one from another CA.
use std::path::{Path, PathBuf};
use std::time::Duration;

use authd::proto::v1;
use authd::tls::{ClientAuth, GrpcTlsArgs, HealthcheckTlsArgs, HttpTlsArgs, UpstreamTlsArgs};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tonic::transport::Channel;

use crate::helpers::*;

// ---- Certificates ----

/// PEM files in a directory of their own, removed when dropped.
pub(crate) struct Pki {
    dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate signed by `issuer`, and its key, in PEM.
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &**issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "authd-tls-test-{}-{}",
            std::process::id(),
            &authd::domain::secret::random_token()[..12]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        let ca = new_ca("authd test CA");
        let other_ca = new_ca("another CA");
        let server = leaf(
            &ca,
            "authd.test",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = leaf(&ca, "shim-1", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let stranger = leaf(
            &other_ca,
            "stranger",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        pki.write("ca.pem", &ca.pem());
        pki.write("server.pem", &server.0);
        pki.write("server.key", &server.1);
        pki.write("client.pem", &client.0);
        pki.write("client.key", &client.1);
        pki.write("stranger.pem", &stranger.0);
        pki.write("stranger.key", &stranger.1);
        pki
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn p(&self, name: &str) -> Option<PathBuf> {
        Some(self.path(name))
    }

    fn grpc_server(&self, client_ca: bool, mode: Option<ClientAuth>) -> GrpcTlsArgs {
        GrpcTlsArgs {
            grpc_tls_cert: self.p("server.pem"),
            grpc_tls_key: self.p("server.key"),
            grpc_tls_client_ca: client_ca.then(|| self.path("ca.pem")),
            grpc_tls_client_auth: mode,
        }
    }

    pub(crate) fn http_server(&self) -> HttpTlsArgs {
        HttpTlsArgs {
            http_tls_cert: self.p("server.pem"),
            http_tls_key: self.p("server.key"),
        }
    }

    /// A gRPC client that trusts the test CA, presenting `identity` (the
    /// base name of a certificate and key) if any.
    fn grpc_client(&self, identity: Option<&str>) -> authd::tls::GrpcClientTls {
        HealthcheckTlsArgs {
            tls_ca: self.p("ca.pem"),
            tls_cert: identity.map(|name| self.path(&format!("{name}.pem"))),
            tls_key: identity.map(|name| self.path(&format!("{name}.key"))),
            tls_server_name: None,
        }
        .load(true)
        .unwrap()
        .unwrap()
    }

    /// An https client that trusts the test CA.
    pub(crate) fn https_client(&self) -> reqwest::ClientBuilder {
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(self.path("ca.pem")).unwrap()).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
    }
}

// ---- Spawning ----

async fn spawn_grpc_tls(pki: &Pki, client_ca: bool, mode: Option<ClientAuth>) -> TestApp {
    let options = TestOptions {
        grpc_tls: pki.grpc_server(client_ca, mode).load().unwrap(),
        ..TestOptions::default()
    };
    spawn_app_with(options).await
}

async fn spawn_http_tls(pki: &Pki) -> TestApp {
    let options = TestOptions {
        http_tls: pki.http_server().load().unwrap(),
        http_request_timeout: Duration::from_secs(1),
        ..TestOptions::default()
    };
    spawn_app_with(options).await
}

/// A registration over a channel to the gRPC port: the call every TLS
/// case tries.
async fn register_over(channel: Channel) -> Result<v1::RegisterAppResponse, tonic::Status> {
    authd::proto::v1::apps_client::AppsClient::new(channel)
        .register_app(v1::RegisterAppRequest {
            client_name: "tls".into(),
            redirect_uris: vec![OOB.into()],
            scopes: "read".into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// A channel to the app's gRPC port over TLS, trusting the test CA and
/// presenting `identity`. Lazy: a refused handshake shows on the call.
fn tls_channel(app: &TestApp, pki: &Pki, identity: Option<&str>) -> Channel {
    Channel::from_shared(format!("https://{}", app.application().grpc_addr()))
        .unwrap()
        .tls_config(pki.grpc_client(identity).client_config())
        .unwrap()
        .connect_lazy()
}

/// The error of a call that must fail, with its sources: the TLS alert is
/// at the bottom.
fn refusal(result: Result<v1::RegisterAppResponse, tonic::Status>) -> String {
    match result {
        Ok(answer) => panic!("expected a refusal, got {answer:?}"),
        Err(status) => {
            let mut text = format!("{status}");
            let mut next = std::error::Error::source(&status);
            while let Some(e) = next {
                text.push_str(&format!(": {e}"));
                next = e.source();
            }
            text
        }
    }
}

// ---- gRPC ----

#[tokio::test]
async fn grpc_over_tls_serves_calls_and_refuses_a_plaintext_client() {
    let pki = Pki::new();
    let app = spawn_grpc_tls(&pki, false, None).await;
    let registered = register_over(tls_channel(&app, &pki, None)).await.unwrap();
    assert!(!registered.client_id.is_empty());

    let plaintext =
        Channel::from_shared(format!("http://{}", app.application().grpc_addr())).unwrap();
    let refused = match plaintext.connect().await {
        Ok(channel) => register_over(channel).await.is_err(),
        Err(_) => true,
    };
    assert!(
        refused,
        "a plaintext client got an answer from the TLS port"
    );
}

#[tokio::test]
async fn grpc_tls_refuses_a_client_that_does_not_trust_the_server_certificate() {
    let pki = Pki::new();
    let app = spawn_grpc_tls(&pki, false, None).await;
    // Trusts only the other CA.
    let distrustful = HealthcheckTlsArgs {
        tls_ca: pki.p("stranger.pem"),
        ..Default::default()
    }
    .load(true)
    .unwrap()
    .unwrap();
    let channel = Channel::from_shared(format!("https://{}", app.application().grpc_addr()))
        .unwrap()
        .tls_config(distrustful.client_config())
        .unwrap()
        .connect_lazy();
    let refusal = refusal(register_over(channel).await);
    assert!(refusal.contains("UnknownIssuer"), "{refusal}");
}

#[tokio::test]
async fn grpc_requiring_client_certificates_refuses_a_client_without_one() {
    let pki = Pki::new();
    let app = spawn_grpc_tls(&pki, true, None).await;
    let refusal = refusal(register_over(tls_channel(&app, &pki, None)).await);
    assert!(refusal.contains("CertificateRequired"), "{refusal}");
}

#[tokio::test]
async fn grpc_requiring_client_certificates_accepts_one_from_the_ca() {
    let pki = Pki::new();
    let app = spawn_grpc_tls(&pki, true, Some(ClientAuth::Required)).await;
    let registered = register_over(tls_channel(&app, &pki, Some("client")))
        .await
        .unwrap();
    assert!(!registered.client_id.is_empty());
}

#[tokio::test]
async fn grpc_requiring_client_certificates_refuses_one_from_another_ca() {
    let pki = Pki::new();
    let app = spawn_grpc_tls(&pki, true, None).await;
    let refusal = refusal(register_over(tls_channel(&app, &pki, Some("stranger"))).await);
    assert!(refusal.contains("UnknownCA"), "{refusal}");
}

/// The database of `app`, as a DATABASE_URL in key=value form.
fn database_url(config: &tokio_postgres::Config) -> String {
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        tokio_postgres::config::Host::Unix(dir) => dir.display().to_string(),
    };
    format!(
        "host={host} port={} user={} dbname={}",
        config.get_ports()[0],
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or("postgres"),
    )
}

#[tokio::test]
async fn the_client_certificate_subject_is_in_the_rpc_log_line() {
    use tokio::io::AsyncBufReadExt;
    let pki = Pki::new();
    // The authd binary, as a replica on this test's database, so that its
    // log is its own.
    let app = spawn_app().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .args(["serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "off"])
        .arg("--grpc-tls-cert")
        .arg(pki.path("server.pem"))
        .arg("--grpc-tls-key")
        .arg(pki.path("server.key"))
        .arg("--grpc-tls-client-ca")
        .arg(pki.path("ca.pem"))
        .env("DATABASE_URL", database_url(&app.db_config()))
        .env(
            "AUTHD_KEY_ENCRYPTION_KEY",
            app.key_encryption_key().to_base64(),
        )
        .env("RUST_LOG", "info")
        .env("AUTHD_PURGE_INTERVAL", "never")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut next_line = async |wanted: &str| {
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains(wanted) {
                    return line;
                }
            }
            panic!("authd exited before logging {wanted:?}");
        })
        .await
        .unwrap_or_else(|_| panic!("authd did not log {wanted:?}"))
    };
    let listening = next_line("authd gRPC listening").await;
    assert!(
        listening.contains("client_certificates=required"),
        "{listening}"
    );
    let addr = listening
        .split("grpc_addr=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(pki.grpc_client(Some("client")).client_config())
        .unwrap()
        .connect_lazy();
    register_over(channel).await.unwrap();
    let line = next_line("/authd.v1.Apps/RegisterApp").await;
    assert!(line.contains("client=CN=shim-1"), "{line}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn grpc_optional_client_certificates_let_a_client_without_one_in() {
    let pki = Pki::new();
    let app = spawn_grpc_tls(&pki, true, Some(ClientAuth::Optional)).await;
    register_over(tls_channel(&app, &pki, None)).await.unwrap();
    register_over(tls_channel(&app, &pki, Some("client")))
        .await
        .unwrap();
}

#[tokio::test]
async fn grpc_optional_client_certificates_still_refuse_one_from_another_ca() {
    let pki = Pki::new();
    let app = spawn_grpc_tls(&pki, true, Some(ClientAuth::Optional)).await;
    let refusal = refusal(register_over(tls_channel(&app, &pki, Some("stranger"))).await);
    assert!(refusal.contains("UnknownCA"), "{refusal}");
}

#[tokio::test]
async fn healthcheck_works_against_a_tls_port_that_requires_client_certificates() {
    let pki = Pki::new();
    let app = spawn_grpc_tls(&pki, true, None).await;
    let addr = app.application().grpc_addr().to_string();
    let with_cert = HealthcheckTlsArgs {
        tls_ca: pki.p("ca.pem"),
        tls_cert: pki.p("client.pem"),
        tls_key: pki.p("client.key"),
        tls_server_name: None,
    };
    // Health turns SERVING once PostgreSQL has answered a first ping.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Err(e) = authd::cli::healthcheck(&addr, &with_cert).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the health check never passed: {e:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let without_cert = HealthcheckTlsArgs {
        tls_ca: pki.p("ca.pem"),
        ..Default::default()
    };
    assert!(authd::cli::healthcheck(&addr, &without_cert).await.is_err());
    assert!(
        authd::cli::healthcheck(&addr, &HealthcheckTlsArgs::default())
            .await
            .is_err(),
        "a plaintext health check passed against the TLS port"
    );
}

// ---- HTTP ----

#[tokio::test]
async fn http_over_tls_serves_registration_token_and_verify_credentials() {
    let pki = Pki::new();
    let app = spawn_http_tls(&pki).await;
    assert!(app.url("").starts_with("https://"));
    let http = pki.https_client().build().unwrap();
    let registered = http
        .post(app.url("/api/v1/apps"))
        .json(&serde_json::json!({
            "client_name": "over tls",
            "redirect_uris": OOB,
            "scopes": "read",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);
    let registered: Value = registered.json().await.unwrap();
    let token = http
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", registered["client_id"].as_str().unwrap()),
            (
                "client_secret",
                registered["client_secret"].as_str().unwrap(),
            ),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token: Value = token.json().await.unwrap();
    let verified = http
        .get(app.url("/api/v1/apps/verify_credentials"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    let verified: Value = verified.json().await.unwrap();
    assert_eq!(verified["name"], "over tls");
}

#[tokio::test]
async fn http_over_tls_offers_http2_and_http1_by_alpn() {
    let pki = Pki::new();
    let app = spawn_http_tls(&pki).await;
    let h2 = pki
        .https_client()
        .build()
        .unwrap()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(h2.version(), reqwest::Version::HTTP_2);
    assert_eq!(h2.status(), 200);
    let h1 = pki
        .https_client()
        .http1_only()
        .build()
        .unwrap()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(h1.version(), reqwest::Version::HTTP_11);
    assert_eq!(h1.status(), 200);
}

#[tokio::test]
async fn a_plaintext_request_to_the_https_port_fails() {
    let pki = Pki::new();
    let app = spawn_http_tls(&pki).await;
    let addr = app.application().http_addr().unwrap();
    let plaintext = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(
        plaintext.is_err(),
        "a plaintext request got an answer: {plaintext:?}"
    );
}

#[tokio::test]
async fn cookies_are_secure_when_the_listener_speaks_tls() {
    let pki = Pki::new();
    // The issuer is http://authd.test: Secure comes from the listener.
    let app = spawn_http_tls(&pki).await;
    app.create_user("alice", false).await;
    let browser = pki.https_client().cookie_store(true).build().unwrap();
    let form = browser.get(app.url("/auth/sign_in")).send().await.unwrap();
    let csrf_cookie = set_cookie(&form, "authd_csrf");
    assert!(csrf_cookie.contains("; Secure"), "{csrf_cookie}");
    let page = form.text().await.unwrap();
    let csrf = hidden(&page, "csrf_token").unwrap();
    let email = email("alice");
    let signed_in = browser
        .post(app.url("/auth/sign_in"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", email.as_str()),
            ("password", PASSWORD),
            ("next", "/oauth/authorized_applications"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::FOUND);
    let session_cookie = set_cookie(&signed_in, "authd_session");
    assert!(session_cookie.contains("; Secure"), "{session_cookie}");
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
}

fn set_cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set"))
        .to_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_the_tls_handshake_is_disconnected() {
    let pki = Pki::new();
    // The first-request deadline (which bounds the handshake) is 10s here.
    let app = spawn_http_tls(&pki).await;
    let addr = app.application().http_addr().unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Connected, and then silent: no ClientHello.
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the server kept a silent connection open past its timeout"
    );
    // The server still serves others.
    let ok = pki
        .https_client()
        .build()
        .unwrap()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

// ---- The remote shim ----

/// `authd shim` with these flags, parsed as the command line is.
fn shim_args(args: &[&str]) -> authd::config::ShimArgs {
    use clap::Parser;
    let mut argv = vec!["authd", "shim"];
    argv.extend_from_slice(args);
    match authd::cli::Cli::try_parse_from(argv).unwrap().command {
        Some(authd::cli::Command::Shim(args)) => *args,
        other => panic!("not the shim: {other:?}"),
    }
}

async fn shim_register(http: &reqwest::Client, base: &str) -> reqwest::Response {
    http.post(format!("{base}/api/v1/apps"))
        .json(&serde_json::json!({
            "client_name": "through the shim",
            "redirect_uris": OOB,
            "scopes": "read",
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_remote_shim_reaches_a_core_that_requires_client_certificates() {
    let pki = Pki::new();
    let core = spawn_grpc_tls(&pki, true, None).await;
    let upstream = format!("https://{}", core.application().grpc_addr());
    let path = |name: &str| pki.path(name).to_string_lossy().into_owned();
    let args = shim_args(&[
        "--upstream",
        &upstream,
        "--upstream-ca",
        &path("ca.pem"),
        "--upstream-tls-cert",
        &path("client.pem"),
        "--upstream-tls-key",
        &path("client.key"),
        "--http-addr",
        "127.0.0.1:0",
        "--http-tls-cert",
        &path("server.pem"),
        "--http-tls-key",
        &path("server.key"),
        "--upstream-timeout",
        "5s",
    ]);
    let shim = authd::startup::Shim::start(&args).await.unwrap();
    let base = format!("https://127.0.0.1:{}", shim.http_addr().port());
    let http = pki.https_client().build().unwrap();
    let registered = shim_register(&http, &base).await;
    assert_eq!(registered.status(), 200);
    let registered: Value = registered.json().await.unwrap();
    assert!(registered["client_secret"].as_str().is_some());
    shim.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn the_remote_shim_without_a_client_certificate_is_refused_by_the_core() {
    let pki = Pki::new();
    let core = spawn_grpc_tls(&pki, true, None).await;
    let upstream = format!("https://{}", core.application().grpc_addr());
    let ca = pki.path("ca.pem").to_string_lossy().into_owned();
    let args = shim_args(&[
        "--upstream",
        &upstream,
        "--upstream-ca",
        &ca,
        "--http-addr",
        "127.0.0.1:0",
        "--upstream-timeout",
        "3s",
    ]);
    let shim = authd::startup::Shim::start(&args).await.unwrap();
    let base = format!("http://{}", shim.http_addr());
    let refused = shim_register(&reqwest::Client::new(), &base).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    shim.stop(Duration::from_secs(5)).await.unwrap();
}

// ---- Start-up errors ----

/// `authd serve` with these flags: the error its configuration fails with.
fn serve_error(args: &[&str]) -> String {
    use clap::Parser;
    let mut argv = vec!["authd", "serve"];
    argv.extend_from_slice(args);
    let cli = authd::cli::Cli::try_parse_from(argv).unwrap();
    let Some(authd::cli::Command::Serve(serve)) = cli.command else {
        panic!("not serve");
    };
    format!(
        "{:#}",
        serve.config().expect_err("the configuration was accepted")
    )
}

fn s(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[test]
fn a_key_that_is_not_the_certificates_stops_start_up_naming_both_files() {
    let pki = Pki::new();
    let (cert, key) = (pki.path("server.pem"), pki.path("client.key"));
    let error = serve_error(&["--grpc-tls-cert", &s(&cert), "--grpc-tls-key", &s(&key)]);
    assert!(error.contains("--grpc-tls-key"), "{error}");
    assert!(error.contains(&s(&key)), "{error}");
    assert!(error.contains("is not the private key"), "{error}");
    assert!(error.contains("--grpc-tls-cert"), "{error}");
    assert!(error.contains(&s(&cert)), "{error}");
    let error = serve_error(&["--http-tls-cert", &s(&cert), "--http-tls-key", &s(&key)]);
    assert!(
        error.contains("--http-tls-key") && error.contains("is not the private key"),
        "{error}"
    );
}

#[test]
fn a_missing_file_stops_start_up_naming_the_flag_and_the_file() {
    let pki = Pki::new();
    let missing = pki.path("missing.pem");
    let error = serve_error(&[
        "--http-tls-cert",
        &s(&missing),
        "--http-tls-key",
        &s(&pki.path("server.key")),
    ]);
    assert!(error.contains("--http-tls-cert"), "{error}");
    assert!(error.contains(&s(&missing)), "{error}");
    assert!(error.contains("cannot read"), "{error}");
    let error = serve_error(&[
        "--grpc-tls-cert",
        &s(&pki.path("server.pem")),
        "--grpc-tls-key",
        &s(&pki.path("server.key")),
        "--grpc-tls-client-ca",
        &s(&missing),
    ]);
    assert!(
        error.contains("--grpc-tls-client-ca") && error.contains(&s(&missing)),
        "{error}"
    );
}

#[test]
fn malformed_files_stop_start_up_naming_the_flag_and_the_file() {
    let pki = Pki::new();
    pki.write("garbage.pem", "this is not PEM at all\n");
    let garbage = pki.path("garbage.pem");
    let key = pki.path("server.key");
    let error = serve_error(&["--grpc-tls-cert", &s(&garbage), "--grpc-tls-key", &s(&key)]);
    assert!(
        error.contains("--grpc-tls-cert") && error.contains(&s(&garbage)),
        "{error}"
    );
    assert!(error.contains("no PEM certificate"), "{error}");
    // A certificate where the key should be.
    let cert = pki.path("server.pem");
    let error = serve_error(&["--grpc-tls-cert", &s(&cert), "--grpc-tls-key", &s(&cert)]);
    assert!(
        error.contains("--grpc-tls-key") && error.contains("no PEM private key"),
        "{error}"
    );
    // A truncated certificate.
    let text = std::fs::read_to_string(&cert).unwrap();
    pki.write("truncated.pem", &text[..text.len() / 2]);
    let truncated = pki.path("truncated.pem");
    let error = serve_error(&[
        "--http-tls-cert",
        &s(&truncated),
        "--http-tls-key",
        &s(&key),
    ]);
    assert!(
        error.contains("--http-tls-cert") && error.contains(&s(&truncated)),
        "{error}"
    );
}

#[test]
fn only_one_of_certificate_and_key_stops_start_up() {
    let pki = Pki::new();
    let cert = s(&pki.path("server.pem"));
    let key = s(&pki.path("server.key"));
    let error = serve_error(&["--grpc-tls-cert", &cert]);
    assert!(
        error.contains("--grpc-tls-cert needs --grpc-tls-key"),
        "{error}"
    );
    let error = serve_error(&["--http-tls-key", &key]);
    assert!(
        error.contains("--http-tls-key needs --http-tls-cert"),
        "{error}"
    );
    let error = serve_error(&["--grpc-tls-client-auth", "optional"]);
    assert!(error.contains("--grpc-tls-client-auth"), "{error}");
    let error = serve_error(&["--grpc-tls-client-ca", &cert]);
    assert!(
        error.contains("--grpc-tls-client-ca needs --grpc-tls-cert"),
        "{error}"
    );
}

#[test]
fn the_shim_refuses_upstream_tls_flags_for_a_plaintext_upstream() {
    let pki = Pki::new();
    let args = UpstreamTlsArgs {
        upstream_ca: pki.p("ca.pem"),
        ..Default::default()
    };
    let error = args.load("http://core:50051").unwrap_err().to_string();
    assert!(
        error.contains("--upstream-ca") && error.contains("https://"),
        "{error}"
    );
}

#[test]
fn the_binary_exits_non_zero_with_the_flag_and_file_on_stderr() {
    let pki = Pki::new();
    let missing = pki.path("missing.key");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .args(["serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "off"])
        .arg("--grpc-tls-cert")
        .arg(pki.path("server.pem"))
        .arg("--grpc-tls-key")
        .arg(&missing)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--grpc-tls-key"), "{stderr}");
    assert!(stderr.contains(&s(&missing)), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
