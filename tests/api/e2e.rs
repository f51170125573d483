//! Real clients end to end: Mastodon.py, toot, megalodon, masto, authlib, the
//! seeds' curl commands, the README's grpcurl walk-through and headless
//! Chromium, each unchanged, against a real authd on loopback.
//! The clients are scripts under tests/e2e/; they assert what they see, and
//! print what they were given so that the test can check the core's side.
//!
//! Set-up is part of the test, so that `cargo test` alone suffices: the
//! pinned clients are installed into a virtualenv (tests/e2e/requirements.txt)
//! and a node_modules (tests/e2e/package-lock.json) under target/ on first
//! use, and Debian's chromium is installed with apt-get when it is missing
//! and we are root (as in CI). AUTHD_CHROMIUM names another Chromium.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use authd::proto::v1;

use crate::helpers::*;

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

pub(crate) fn run_checked(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The virtualenv's Python, with tests/e2e/requirements.txt installed. It
/// is rebuilt when the requirements change.
pub(crate) fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-venv");
        let python = venv.join("bin/python");
        let requirements = e2e_dir().join("requirements.txt");
        let wanted = std::fs::read_to_string(&requirements).expect("requirements.txt");
        let stamp = venv.join("installed-requirements.txt");
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
            return python;
        }
        let _ = std::fs::remove_dir_all(&venv);
        run_checked(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv (the e2e tests need Python 3 with venv)",
        );
        run_checked(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements),
            "pip install -r tests/e2e/requirements.txt",
        );
        std::fs::write(&stamp, wanted).expect("write the stamp");
        python
    })
}

/// The node_modules folder of tests/e2e/package-lock.json, installed with
/// `npm ci` under target/; reinstalled when the lock file changes. The
/// scripts find it through NODE_PATH (CommonJS's require, or an import of
/// a path under it for ESM-only packages).
fn node_modules() -> &'static Path {
    static NODE_MODULES: OnceLock<PathBuf> = OnceLock::new();
    NODE_MODULES.get_or_init(|| {
        let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-node");
        let modules = prefix.join("node_modules");
        let lock = std::fs::read_to_string(e2e_dir().join("package-lock.json"))
            .expect("tests/e2e/package-lock.json");
        let stamp = prefix.join("installed-package-lock.json");
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
            return modules;
        }
        let _ = std::fs::remove_dir_all(&prefix);
        std::fs::create_dir_all(&prefix).expect("create the node prefix");
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(e2e_dir().join(file), prefix.join(file)).expect("copy the npm manifest");
        }
        run_checked(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&prefix),
            "npm ci (the e2e tests need Node.js and npm)",
        );
        std::fs::write(&stamp, lock).expect("write the stamp");
        modules
    })
}

pub(crate) fn chromium() -> &'static Path {
    static CHROMIUM: OnceLock<PathBuf> = OnceLock::new();
    CHROMIUM.get_or_init(|| {
        if let Ok(path) = std::env::var("AUTHD_CHROMIUM") {
            return PathBuf::from(path);
        }
        let debian = PathBuf::from("/usr/bin/chromium");
        if debian.exists() {
            return debian;
        }
        let root = nix::unistd::Uid::effective().is_root();
        assert!(
            root && Path::new("/usr/bin/apt-get").exists(),
            "the browser test needs Chromium: install Debian's `chromium` package, or set AUTHD_CHROMIUM"
        );
        eprintln!("installing Debian's chromium for the browser test (apt-get)");
        run_checked(Command::new("apt-get").args(["update", "-qq"]), "apt-get update");
        run_checked(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends", "chromium", "fonts-dejavu-core"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install chromium",
        );
        debian
    })
}

/// Runs a client script against `app` as `alice`; returns the JSON object
/// it printed last.
pub(crate) async fn run_client(
    app: &TestApp,
    program: &Path,
    script: &str,
    extra_env: &[(&str, &str)],
) -> serde_json::Value {
    let mut command = tokio::process::Command::new(program);
    command
        .arg(e2e_dir().join(script))
        .current_dir(e2e_dir())
        .env("AUTHD_URL", app.url(""))
        .env("AUTHD_EMAIL", email("alice"))
        .env("AUTHD_USERNAME", "alice")
        .env("AUTHD_PASSWORD", PASSWORD)
        .env("PYTHON", python())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true);
    if program == Path::new("node") {
        command.env("NODE_PATH", node_modules());
    }
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} took over three minutes"))
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
}

async fn spawn_e2e_app(access_token_ttl: Option<Duration>) -> TestApp {
    let mut options = TestOptions::default();
    options.service.lifetimes.access_token = access_token_ttl;
    let app = spawn_app_on_its_own_url(options).await;
    app.create_user("alice", false).await;
    app
}

/// Whether the core still holds `token` as an active token, asked over gRPC
/// as the app that holds it.
async fn active(app: &TestApp, client: &TestClient, token: &str) -> bool {
    app.introspect(client, token).await.is_active()
}

fn client_of(client_id: &str, client_secret: &str) -> TestClient {
    TestClient {
        client_id: client_id.into(),
        client_secret: client_secret.into(),
        app_id: String::new(),
    }
}

/// The token is stored as a digest, and the core holds it revoked.
async fn assert_stored_and_revoked(app: &TestApp, out: &serde_json::Value, token_field: &str) {
    let token = out[token_field].as_str().expect("the token");
    let stored: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM access_tokens WHERE digest = $1",
            &[&sha256(token)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "the token is stored as its SHA-256 digest");
    let client = client_of(
        out["client_id"].as_str().unwrap(),
        out["client_secret"].as_str().unwrap(),
    );
    assert!(
        !active(app, &client, token).await,
        "the client's revocation reached the core"
    );
}

#[tokio::test]
async fn mastodon_py_registers_logs_in_verifies_and_revokes() {
    let app = spawn_e2e_app(None).await;
    let out = run_client(&app, python(), "mastodon_py.py", &[]).await;
    assert_stored_and_revoked(&app, &out, "access_token").await;
}

/// The token is stored as a digest, active in the core with `scope`.
async fn assert_stored_and_active(app: &TestApp, out: &serde_json::Value, scope: &str) {
    let token = out["access_token"].as_str().expect("the token");
    let client = client_of(
        out["client_id"].as_str().unwrap(),
        out["client_secret"].as_str().unwrap(),
    );
    let introspected = app.introspect(&client, token).await;
    assert!(introspected.is_active(), "the client's token is active");
    assert_eq!(introspected.scope.as_deref(), Some(scope));
    assert_eq!(introspected.username.as_deref(), Some("alice"));
}

#[tokio::test]
async fn toot_logs_in_through_the_pages_and_verifies_its_app_and_account() {
    let app = spawn_e2e_app(None).await;
    let out = run_client(&app, python(), "toot_login.py", &[]).await;
    assert_stored_and_active(&app, &out, "read write follow").await;
}

#[tokio::test]
async fn megalodon_registers_logs_in_verifies_and_revokes() {
    let app = spawn_e2e_app(None).await;
    let out = run_client(&app, Path::new("node"), "megalodon.cjs", &[]).await;
    assert_stored_and_revoked(&app, &out, "access_token").await;
}

#[tokio::test]
async fn masto_registers_exchanges_verifies_and_revokes_with_multipart_forms() {
    let app = spawn_e2e_app(None).await;
    let out = run_client(&app, Path::new("node"), "masto.mjs", &[]).await;
    assert_stored_and_revoked(&app, &out, "access_token").await;
}

#[tokio::test]
async fn authlib_runs_pkce_client_credentials_refresh_introspection_and_revocation() {
    let app = spawn_e2e_app(Some(Duration::from_secs(600))).await;
    let out = run_client(&app, python(), "authlib_flows.py", &[]).await;
    assert_stored_and_revoked(&app, &out, "revoked").await;
}

#[tokio::test]
async fn the_seeds_curl_commands_work_as_written() {
    let app = spawn_e2e_app(None).await;
    python();
    let out = run_client(&app, Path::new("bash"), "seeds_curl.sh", &[]).await;
    let account = app
        .accounts()
        .verify_account_credentials(with_bearer(
            v1::VerifyAccountCredentialsRequest::default(),
            out["seed_001_access_token"].as_str().unwrap(),
        ))
        .await
        .expect("the token from the seeds' flow works over gRPC too")
        .into_inner();
    assert_eq!(account.username, "alice");
}

#[tokio::test]
async fn the_readme_grpcurl_walk_through_works_as_written() {
    let app = spawn_app_on_its_own_url(TestOptions::default()).await;
    // The README's CLI step, done here: the admin it bootstraps.
    app.application()
        .service()
        .create_account_unchecked(&authd::service::accounts::AccountRegistration {
            username: "admin".into(),
            email: "admin@example.org".into(),
            password: "admin-password-123".into(),
            admin: true,
        })
        .await
        .expect("the admin account");
    let grpc = app.application().grpc_addr().to_string();
    let out = run_client(
        &app,
        Path::new("bash"),
        "readme_grpcurl.sh",
        &[("AUTHD_GRPC", &grpc)],
    )
    .await;
    assert_eq!(
        out["decisions"],
        serde_json::json!(["consentNeeded", "issued", "loginRequired", "consentNeeded"]),
        "the core decides as Mastodon: ask, then issue at once, force_login signs in again, prompt=consent asks: {out}"
    );
    assert_eq!(
        out["resume_prompt"],
        serde_json::json!(["consent"]),
        "{out}"
    );
    assert_eq!(out["created"], 1, "step 4 created alice: {out}");
    assert_eq!(out["first_introspect"]["active"], true, "{out}");
    assert_eq!(
        out["first_introspect"]["scope"], "admin:write",
        "the token has the scope step 2 asked for: {out}"
    );
    assert_eq!(
        out["last_introspect"],
        serde_json::json!({"active": false}),
        "as the README says: {out}"
    );
    assert_eq!(out["health"], "SERVING", "{out}");
    let alice: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM accounts WHERE email = 'alice@example.org'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(alice, 1, "the account exists in PostgreSQL");
}

#[tokio::test]
async fn chromium_logs_in_consents_and_gets_a_working_code() {
    let app = spawn_e2e_app(None).await;
    let screenshots = std::env::var("AUTHD_E2E_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-screenshots"));
    let chromium = chromium().to_str().expect("utf-8 path").to_owned();
    let out = run_client(
        &app,
        python(),
        "browser.py",
        &[
            ("AUTHD_CHROMIUM", &chromium),
            (
                "AUTHD_SCREENSHOTS",
                screenshots.to_str().expect("utf-8 path"),
            ),
        ],
    )
    .await;
    let client = client_of(
        out["client_id"].as_str().unwrap(),
        out["client_secret"].as_str().unwrap(),
    );
    let token = app
        .exchange_code(&client, out["code"].as_str().unwrap(), OOB, "")
        .await
        .expect("the code the browser got exchanges for a token");
    assert_eq!(token.scope, "read write:statuses");
    assert!(active(&app, &client, &token.access_token).await);
    for page in ["login", "consent", "code", "error"] {
        let png = std::fs::read(screenshots.join(format!("{page}.png"))).expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{page}.png is a PNG");
    }
}

fn sha256(secret: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).to_vec()
}

#[tokio::test]
async fn authlib_as_an_openid_relying_party_validates_id_tokens_for_rs256_es256_and_eddsa() {
    let app = spawn_e2e_app(None).await;
    let alice = app
        .login(&email("alice"), PASSWORD)
        .await
        .expect("alice signs in")
        .account
        .expect("her account")
        .id;
    let out = run_client(&app, python(), "oidc_client.py", &[]).await;
    assert_eq!(
        out["registration_endpoint"],
        app.url("/oauth/register"),
        "{out}"
    );
    let mut clients = std::collections::HashSet::new();
    for alg in ["RS256", "ES256", "EdDSA"] {
        let seen = &out["algorithms"][alg];
        assert_eq!(seen["alg"], alg, "signed with the registered alg: {out}");
        assert_eq!(
            seen["sub"],
            alice.as_str(),
            "sub is the account's id: {out}"
        );
        assert_eq!(seen["nonce_matched"], true, "{out}");
        assert_eq!(seen["replay_refused"], true, "{out}");
        assert_eq!(seen["at_hash_matched"], true, "{out}");
        assert_eq!(
            seen["userinfo"],
            serde_json::json!({
                "sub": alice,
                "preferred_username": "alice",
                "email": email("alice"),
                // authd does not verify addresses, and says so.
                "email_verified": false,
                "name": "alice",
            }),
            "{out}"
        );
        assert_eq!(seen["refreshed_sub"], alice.as_str(), "{out}");
        assert_eq!(seen["refreshed_has_nonce"], false, "{out}");
        assert_eq!(
            seen["pages"],
            serde_json::json!(["sign_in", "consent"]),
            "{out}"
        );
        assert!(
            clients.insert(seen["client_id"].as_str().unwrap().to_owned()),
            "one client per alg: {out}"
        );
    }
}
