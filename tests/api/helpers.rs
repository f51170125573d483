//! The test harness: each test gets a real authd on a random loopback port,
//! over its own fresh database, removed afterwards: a copy of a template
//! database that the migrations ran in once per run. Without DATABASE_URL the
//! databases live in one throwaway PostgreSQL per test binary, started with
//! the same code as authd's embedded default; with DATABASE_URL they are
//! created on that server.
use std::sync::OnceLock;
use std::time::Duration;

use authd::config::{Config, DatabaseConfig, HttpConfig};
use authd::domain::client_ip::TrustedProxies;
use authd::embedded_postgres::{EmbeddedPostgres, throwaway};
use authd::http::ShimConfig;
use authd::proto::v1;
use authd::proto::v1::accounts_client::AccountsClient;
use authd::proto::v1::apps_client::AppsClient;
use authd::proto::v1::o_auth_client::OAuthClient;
use authd::proto::v1::sessions_client::SessionsClient;
use authd::service::ServiceConfig;
use authd::service::accounts::AccountRegistration;
use authd::startup::Application;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::common;

pub use crate::common::{OOB, PASSWORD, TestClient, hidden};

enum Host {
    Embedded(EmbeddedPostgres),
    External(tokio_postgres::Config),
}

/// Where the tests' databases live, and the template they are copied from.
struct Server {
    host: Host,
    template: String,
}

impl Host {
    fn config(&self, dbname: &str) -> tokio_postgres::Config {
        match self {
            Host::Embedded(pg) => pg.connect_config(dbname),
            Host::External(base) => {
                let mut c = base.clone();
                c.dbname(dbname);
                c
            }
        }
    }
}

impl Server {
    fn config(&self, dbname: &str) -> tokio_postgres::Config {
        self.host.config(dbname)
    }
}

/// The PostgreSQL server of this test binary, started on first use, with
/// the template database migrated. Both are made on a runtime of their own
/// because each test has its own runtime, which ends with the test.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async {
                let host = match std::env::var("DATABASE_URL") {
                    Ok(url) => Host::External(url.parse().expect("DATABASE_URL parses")),
                    Err(_) => Host::Embedded(
                        throwaway::start()
                            .await
                            .expect("start a throwaway PostgreSQL for the tests"),
                    ),
                };
                let template = template_name();
                make_template(&host, &template).await;
                Server { host, template }
            })
        })
        .join()
        .expect("start the test PostgreSQL")
    })
}

async fn connect(config: tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, conn) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(conn);
    client
}

async fn maintenance_client() -> tokio_postgres::Client {
    connect(server().config("postgres")).await
}

// ---- The template database ----
//
// Migrating a database takes far longer than copying one, so the
// migrations run once, into a template, and every test's database is a
// copy of it (`CREATE DATABASE .. TEMPLATE`), as crates.io's
// crates_io_test_db does. The template is named after the migrations, so
// that a changed migration makes a new one; on a shared server
// (DATABASE_URL), test binaries running at once take turns making it.

/// Identifies the advisory lock under which a template is made.
const TEMPLATE_LOCK_KEY: i64 = 0x0061_7574_6864_7400;

/// `authd_template_` and the first 12 hex digits of the SHA-256 of every
/// migration, by name and content.
fn template_name() -> String {
    use sha2::{Digest, Sha256};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read migrations/")
        .map(|entry| entry.expect("migrations/ entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for path in files {
        hash.update(path.file_name().expect("name").as_encoded_bytes());
        hash.update(std::fs::read(&path).expect("read a migration"));
    }
    let digest = hash.finalize();
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("authd_template_{hex}")
}

/// Makes the template, unless a finished one is there: one marked
/// IS_TEMPLATE, which is its last step. It allows no connections, because
/// CREATE DATABASE .. TEMPLATE fails while anyone is connected to it.
async fn make_template(host: &Host, template: &str) {
    let admin = connect(host.config("postgres")).await;
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .expect("lock the template");
    let finished = admin
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate",
            &[&template],
        )
        .await
        .expect("look for the template")
        .is_some();
    if !finished {
        // What an interrupted run left, if anything, goes first.
        for statement in [
            format!("DROP DATABASE IF EXISTS {template} WITH (FORCE)"),
            format!("CREATE DATABASE {template}"),
        ] {
            admin
                .batch_execute(&statement)
                .await
                .expect("create the template database");
        }
        let store = authd::store::Store::new(authd::store::StoreConfig {
            pg: host.config(template),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
            connection_lifetime: authd::store::CONNECTION_LIFETIME,
        })
        .expect("template store");
        authd::store::migrate::run(&store)
            .await
            .expect("migrate the template");
        store.close();
        drop(store);
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {template} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"
            ))
            .await
            .expect("mark the template");
        // The migration's connection closes on its own time.
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                &[&template],
            )
            .await
            .expect("end connections to the template");
    }
    admin
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .expect("unlock the template");
}

pub struct TestApp {
    pub app: Option<Application>,
    pub channel: Channel,
    pub db_name: String,
    /// Replicas share the first one's database and leave it alone.
    owns_database: bool,
    /// "https" when the HTTP listener speaks TLS.
    http_scheme: &'static str,
}

#[derive(Clone)]
pub struct TestOptions {
    pub service: ServiceConfig,
    pub health_interval: Duration,
    pub db_timeout: Duration,
    pub http_request_timeout: Duration,
    pub trusted_proxies: TrustedProxies,
    pub purge_interval: Option<Duration>,
    /// A listener of its own for /metrics (`--metrics-addr`).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// TLS on the gRPC listener, and what the test's channel presents to
    /// it (with TLS on, the channel connects lazily, so that a test can
    /// expect a refusal).
    pub grpc_tls: Option<authd::tls::GrpcServerTls>,
    pub grpc_client_tls: Option<authd::tls::GrpcClientTls>,
    /// TLS on the HTTP listener.
    pub http_tls: Option<authd::tls::HttpServerTls>,
    /// The bounds on both listeners' connections.
    pub connections: authd::connections::ConnectionLimits,
    /// The backend behind the door (`--upstream-api`).
    pub upstream_api: Option<authd::http::door::UpstreamApi>,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            service: ServiceConfig::new("http://authd.test"),
            health_interval: Duration::from_millis(200),
            db_timeout: Duration::from_secs(5),
            http_request_timeout: Duration::from_secs(10),
            trusted_proxies: TrustedProxies::loopback(),
            purge_interval: None,
            metrics_addr: None,
            grpc_tls: None,
            grpc_client_tls: None,
            http_tls: None,
            connections: authd::connections::ConnectionLimits::default(),
            upstream_api: None,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

/// An authd whose opaque access tokens expire after `ttl`, so that codes
/// and refreshes also issue refresh tokens.
pub async fn spawn_app_with_access_token_ttl(ttl: Duration) -> TestApp {
    let mut options = TestOptions::default();
    options.service.lifetimes.access_token = Some(ttl);
    spawn_app_with(options).await
}

pub async fn spawn_app_with(options: TestOptions) -> TestApp {
    let public_url = options.service.issuer.clone();
    try_spawn_app(
        options,
        "127.0.0.1:0".parse().expect("addr"),
        public_url,
        None,
    )
    .await
    .expect("build the application")
}

impl TestApp {
    /// Another authd process-alike on the same database: a replica.
    pub async fn spawn_replica(&self, mut options: TestOptions) -> TestApp {
        // Replicas share the key that seals the signing keys.
        options.service.key_encryption_key = self.key_encryption_key();
        let public_url = options.service.issuer.clone();
        try_spawn_app(
            options,
            "127.0.0.1:0".parse().expect("addr"),
            public_url,
            Some(self.db_name.clone()),
        )
        .await
        .expect("build the replica")
    }
}

impl TestApp {
    /// A replica started with `options` as they are, its key-encryption
    /// key included: the error, when it cannot start.
    pub async fn try_spawn_replica(&self, options: TestOptions) -> anyhow::Result<TestApp> {
        let public_url = options.service.issuer.clone();
        try_spawn_app(
            options,
            "127.0.0.1:0".parse().expect("addr"),
            public_url,
            Some(self.db_name.clone()),
        )
        .await
    }
}

/// An authd whose issuer is its own HTTP address, for clients that follow
/// the discovery document to the endpoints, as Mastodon.py and a browser
/// do. The port is picked first and bound second, so another process may
/// take it in between: then try another.
pub async fn spawn_app_on_its_own_url(mut options: TestOptions) -> TestApp {
    let mut last_error = None;
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("http://127.0.0.1:{port}");
        options.service.issuer = url.clone();
        let addr = format!("127.0.0.1:{port}").parse().expect("addr");
        match try_spawn_app(options.clone(), addr, url, None).await {
            Ok(app) => return app,
            Err(e) => last_error = Some(e),
        }
    }
    panic!("could not start authd on a free port: {last_error:?}");
}

async fn try_spawn_app(
    options: TestOptions,
    http_addr: std::net::SocketAddr,
    public_url: String,
    shared_database: Option<String>,
) -> anyhow::Result<TestApp> {
    let owns_database = shared_database.is_none();
    let db_name = match shared_database {
        Some(name) => name,
        None => {
            let name = format!("authd_test_{}", uuid_like());
            maintenance_client()
                .await
                .batch_execute(&format!(
                    "CREATE DATABASE {name} TEMPLATE {}",
                    server().template
                ))
                .await
                .expect("create the test database");
            name
        }
    };
    // Dropped (with its database) on every path, the error one included.
    let mut test_app = TestApp {
        app: None,
        channel: Channel::from_static("http://127.0.0.1:1").connect_lazy(),
        db_name,
        owns_database,
        http_scheme: if options.http_tls.is_some() {
            "https"
        } else {
            "http"
        },
    };
    let app = Application::build(Config {
        grpc_addr: "127.0.0.1:0".parse().expect("addr"),
        grpc_tls: options.grpc_tls.clone(),
        grpc_connections: options.connections,
        http: Some(HttpConfig {
            addr: http_addr,
            tls: options.http_tls.clone(),
            connections: options.connections,
            shim: ShimConfig {
                public_url,
                body_limit: 64 * 1024,
                upstream_timeout: Duration::from_secs(5),
                request_timeout: options.http_request_timeout,
                trusted_proxies: options.trusted_proxies.clone(),
                upstream_api: options.upstream_api.clone(),
            },
        }),
        database: DatabaseConfig::Connect(Box::new(server().config(&test_app.db_name))),
        db_pool_size: 8,
        db_timeout: options.db_timeout,
        trusted_proxies: options.trusted_proxies,
        request_timeout: options.db_timeout * 2,
        purge_interval: options.purge_interval,
        service: options.service,
        health_interval: options.health_interval,
        shutdown_grace: Duration::from_secs(5),
        metrics_addr: options.metrics_addr,
    })
    .await?;
    test_app.channel = match &options.grpc_tls {
        None => Channel::from_shared(format!("http://{}", app.grpc_addr()))
            .expect("uri")
            .connect()
            .await
            .expect("connect to authd"),
        Some(_) => {
            let mut endpoint =
                Channel::from_shared(format!("https://{}", app.grpc_addr())).expect("uri");
            if let Some(tls) = &options.grpc_client_tls {
                endpoint = endpoint.tls_config(tls.client_config()).expect("tls");
            }
            endpoint.connect_lazy()
        }
    };
    test_app.app = Some(app);
    Ok(test_app)
}

fn uuid_like() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !self.owns_database {
            return;
        }
        let db_name = self.db_name.clone();
        // The test's runtime is going away; drop the database from a
        // runtime of our own. FORCE ends the pool's connections, and waits
        // (in steps of 100 ms) for them to go.
        let dropping = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async {
                let client = maintenance_client().await;
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
                    .await;
            });
        });
        // The throwaway cluster goes with the run, so the next test need
        // not wait for the drop; on a server of DATABASE_URL's, one the
        // process left unfinished would stay there.
        if matches!(server().host, Host::External(_)) {
            let _ = dropping.join();
        }
    }
}

/// A signed-in account.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub session: String,
}

pub fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    request
}

pub fn with_basic<T>(message: T, client: &TestClient) -> Request<T> {
    use base64::Engine;
    let mut request = Request::new(message);
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", client.client_id, client.client_secret));
    request.metadata_mut().insert(
        "authorization",
        format!("Basic {encoded}").parse().expect("metadata"),
    );
    request
}

/// The OAuth error name a status carries (its ErrorInfo reason).
pub fn reason(status: &Status) -> String {
    authd::grpc::status::auth_error_from_status(status)
        .kind
        .as_str()
        .to_owned()
}

#[track_caller]
pub fn assert_error(result: Result<impl std::fmt::Debug, Status>, code: Code, name: &str) {
    match result {
        Ok(v) => panic!("expected {code:?} {name}, got Ok({v:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(reason(&status), name, "{status:?}");
        }
    }
}

impl TestApp {
    pub fn apps(&self) -> AppsClient<Channel> {
        AppsClient::new(self.channel.clone())
    }

    pub fn oauth(&self) -> OAuthClient<Channel> {
        OAuthClient::new(self.channel.clone())
    }

    pub fn sessions(&self) -> SessionsClient<Channel> {
        SessionsClient::new(self.channel.clone())
    }

    pub fn accounts(&self) -> AccountsClient<Channel> {
        AccountsClient::new(self.channel.clone())
    }

    pub fn application(&self) -> &Application {
        self.app.as_ref().expect("application running")
    }

    /// The key that seals this app's signing keys: what a replica, or the
    /// `authd` command run against its database, must be given.
    pub fn key_encryption_key(&self) -> authd::service::key_encryption::KeyEncryptionKey {
        self.application()
            .service()
            .config()
            .key_encryption_key
            .clone()
    }

    pub fn db_config(&self) -> tokio_postgres::Config {
        server().config(&self.db_name)
    }

    /// A direct connection to this test's database, to inspect or arrange
    /// what the API cannot (an expired code, say).
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, conn) = server()
            .config(&self.db_name)
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client
    }

    /// Takes the admin role from an account, as an operator would in the
    /// database, after its tokens were issued.
    pub async fn demote(&self, username: &str) {
        self.db()
            .await
            .execute(
                "UPDATE accounts SET is_admin = false WHERE username = $1",
                &[&username],
            )
            .await
            .expect("demote");
    }

    pub async fn register_app(&self, redirect_uris: &[&str], scopes: &str) -> TestClient {
        common::register_app(&self.channel, redirect_uris, scopes).await
    }

    /// An app whose access tokens are JWTs.
    pub async fn register_jwt_app(&self, scopes: &str) -> TestClient {
        self.register_app_with(v1::RegisterAppRequest {
            client_name: "jwt app".into(),
            redirect_uris: vec![OOB.into()],
            scopes: scopes.into(),
            access_token_format: "jwt".into(),
            ..Default::default()
        })
        .await
    }

    pub async fn register_app_with(&self, request: v1::RegisterAppRequest) -> TestClient {
        common::register_app_with(&self.channel, request).await
    }

    /// Creates an account the way the CLI does, and signs it in.
    pub async fn create_user(&self, username: &str, admin: bool) -> TestUser {
        let email = format!("{username}@example.org");
        let account = self
            .application()
            .service()
            .create_account_unchecked(&AccountRegistration {
                username: username.into(),
                email: email.clone(),
                password: PASSWORD.into(),
                admin,
            })
            .await
            .expect("create account");
        let session = self.login(&email, PASSWORD).await.expect("login").session;
        TestUser {
            id: account.id.to_string(),
            session,
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<v1::LoginResponse, Status> {
        common::login(&self.channel, email, password).await
    }

    /// The app's count of argon2 runs, from its metrics: what proves that
    /// an unknown email costs a wrong password's work, without timing it.
    pub fn password_hashes(&self) -> u64 {
        let metrics = self.application().service().metrics().render();
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("authd_password_hashes_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no authd_password_hashes_total in\n{metrics}"))
    }

    pub fn authorize_request(
        &self,
        user: &TestUser,
        client: &TestClient,
        redirect_uri: &str,
        scope: &str,
    ) -> v1::AuthorizeRequest {
        v1::AuthorizeRequest {
            session: user.session.clone(),
            response_type: "code".into(),
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.into(),
            scope: scope.into(),
            state: "xyz".into(),
            ..Default::default()
        }
    }

    /// A code for `user`, with optional PKCE challenge.
    pub async fn authorize(
        &self,
        user: &TestUser,
        client: &TestClient,
        redirect_uri: &str,
        scope: &str,
        challenge: Option<&str>,
    ) -> String {
        let mut request = self.authorize_request(user, client, redirect_uri, scope);
        if let Some(c) = challenge {
            request.code_challenge = c.into();
            request.code_challenge_method = "S256".into();
        }
        self.oauth()
            .authorize(request)
            .await
            .expect("authorize")
            .into_inner()
            .code
    }

    pub async fn exchange_code(
        &self,
        client: &TestClient,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<v1::TokenResponse, Status> {
        self.oauth()
            .exchange_token(v1::ExchangeTokenRequest {
                grant_type: "authorization_code".into(),
                client_id: client.client_id.clone(),
                client_secret: client.client_secret.clone(),
                code: code.into(),
                redirect_uri: redirect_uri.into(),
                code_verifier: verifier.into(),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// The whole flow: register, authorize and exchange. Returns the token.
    pub async fn user_token(
        &self,
        user: &TestUser,
        client: &TestClient,
        scope: &str,
    ) -> v1::TokenResponse {
        let code = self.authorize(user, client, OOB, scope, None).await;
        self.exchange_code(client, &code, OOB, "")
            .await
            .expect("exchange code")
    }

    pub async fn client_credentials(
        &self,
        client: &TestClient,
        scope: &str,
    ) -> Result<v1::TokenResponse, Status> {
        common::client_credentials(&self.channel, client, scope).await
    }

    pub async fn refresh(
        &self,
        client: &TestClient,
        refresh_token: &str,
    ) -> Result<v1::TokenResponse, Status> {
        self.oauth()
            .exchange_token(v1::ExchangeTokenRequest {
                grant_type: "refresh_token".into(),
                client_id: client.client_id.clone(),
                client_secret: client.client_secret.clone(),
                refresh_token: refresh_token.into(),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn introspect(&self, caller: &TestClient, token: &str) -> v1::IntrospectResponse {
        common::introspect(&self.channel, caller, token)
            .await
            .expect("introspect")
    }

    pub async fn revoke(
        &self,
        caller: &TestClient,
        token: &str,
    ) -> Result<v1::RevokeResponse, Status> {
        common::revoke(&self.channel, caller, token).await
    }
}

/// A loopback port nothing listens on now (bound and let go), for a
/// listener or a gateway a test starts on a port of its choosing.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

// ---- HTTP ----

impl TestApp {
    /// The shim's base URL.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}://{}{path}",
            self.http_scheme,
            self.application().http_addr().expect("http listener")
        )
    }

    /// An HTTP client that follows no redirects and keeps no cookies.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// A browser-like client: it keeps cookies, follows no redirects.
    pub fn browser(&self) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .expect("client"),
            base: self.url(""),
        }
    }

    /// Registers an app over HTTP; returns the CredentialApplication JSON.
    pub async fn http_register(
        &self,
        redirect_uris: &str,
        scopes: &str,
    ) -> (TestClient, serde_json::Value) {
        let body: serde_json::Value = self
            .http()
            .post(self.url("/api/v1/apps"))
            .json(&serde_json::json!({
                "client_name": "Test App",
                "redirect_uris": redirect_uris,
                "scopes": scopes,
            }))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("json");
        let client = TestClient {
            client_id: body["client_id"].as_str().expect("client_id").into(),
            client_secret: body["client_secret"]
                .as_str()
                .expect("client_secret")
                .into(),
            app_id: body["id"].as_str().expect("id").into(),
        };
        (client, body)
    }
}

pub struct Browser {
    pub client: reqwest::Client,
    base: String,
}

/// The code shown on the out-of-band page.
pub fn oob_code(html: &str) -> Option<String> {
    let marker = "id=\"code\">";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('<')? + start;
    Some(html[start..end].to_owned())
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl Browser {
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// The CSRF token the login form hands out (and its cookie).
    pub async fn csrf(&self) -> String {
        let page = self.get("/auth/sign_in").await.text().await.expect("page");
        hidden(&page, "csrf_token").expect("csrf token on the login form")
    }

    /// Logs in through the form; returns the response (a redirect to `next`).
    pub async fn login(&self, email: &str, password: &str, next: &str) -> reqwest::Response {
        let csrf = self.csrf().await;
        self.post(
            "/auth/sign_in",
            &[
                ("csrf_token", &csrf),
                ("email", email),
                ("password", password),
                ("next", next),
            ],
        )
        .await
    }

    /// Walks an authorization request through consent and Allow; returns
    /// the final response (a redirect, or the out-of-band page).
    pub async fn approve(&self, authorize_query: &str) -> reqwest::Response {
        let consent = self
            .get(&format!("/oauth/authorize?{authorize_query}"))
            .await;
        assert_eq!(consent.status(), 200, "consent page");
        let page = consent.text().await.expect("page");
        let mut form: Vec<(String, String)> = [
            "csrf_token",
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
            "prompt",
            "nonce",
            "claims",
        ]
        .iter()
        .filter_map(|name| hidden(&page, name).map(|v| (name.to_string(), v)))
        .collect();
        form.push(("decision".into(), "allow".into()));
        self.client
            .post(self.url("/oauth/authorize"))
            .form(&form)
            .send()
            .await
            .expect("POST allow")
    }
}

pub fn authorize_query(
    client: &TestClient,
    redirect_uri: &str,
    scope: &str,
    state: &str,
) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scope)
        .append_pair("state", state)
        .finish()
}

/// The user's email, as `create_user` makes it.
pub fn email(username: &str) -> String {
    format!("{username}@example.org")
}
