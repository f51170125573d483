//! The operator's `authd` commands (account, app, token, key), run as the
//! real binary against the test's database while a real authd serves it:
//! each does what it says, and the running server hears of it through the
//! database's notifications, as another replica would.
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tonic::Code;

use crate::admin::{Setup, active, eventually, kid, setup, synced};
use crate::helpers::*;

/// The test database as a connection string for DATABASE_URL.
fn database_url(app: &TestApp) -> String {
    use tokio_postgres::config::Host;
    let config = app.db_config();
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut parts = Vec::new();
    if let Some(host) = config.get_hosts().first() {
        let host = match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        };
        parts.push(format!("host={}", quote(&host)));
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote(user)));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!(
            "password={}",
            quote(&String::from_utf8_lossy(password))
        ));
    }
    parts.push(format!("dbname={}", quote(&app.db_name)));
    parts.join(" ")
}

struct Run {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn json(&self) -> serde_json::Value {
        assert!(self.success, "authd failed: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}", self.stdout);
        })
    }
}

/// Runs `authd ARGS` against the test's database, with `stdin`.
async fn authd(app: &TestApp, args: &[&str], stdin: &str) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .args(args)
        .env("DATABASE_URL", database_url(app))
        .env(
            "AUTHD_KEY_ENCRYPTION_KEY",
            app.key_encryption_key().to_base64(),
        )
        .env("RUST_LOG", "warn")
        .env_remove("AUTHD_JWT_ACCESS_TOKEN_TTL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run authd");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("authd finishes")
        .expect("authd output");
    Run {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn cli_lists_shows_and_deletes_apps_and_the_server_forgets_them_at_once() {
    let Setup { app, gateway, .. } = setup().await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read write").await;
    let app_token = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    assert!(active(&app, &gateway, &app_token).await, "cached");

    let listed = authd(&app, &["app", "list", "--json"], "").await.json();
    let ids: Vec<&str> = listed["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["client_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&client.client_id.as_str()), "{listed}");
    assert!(
        !listed.to_string().contains("secret"),
        "no secret or digest is printed"
    );
    let human = authd(&app, &["app", "list"], "").await;
    assert!(human.success && human.stdout.contains(&client.client_id));

    let shown = authd(
        &app,
        &["app", "show", "--json", "--", &client.client_id],
        "",
    )
    .await
    .json();
    assert_eq!(shown["app"]["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(shown["active_access_tokens"], 1);

    let deleted = authd(&app, &["app", "delete", "--", &client.client_id], "").await;
    assert!(deleted.success, "{}", deleted.stderr);
    assert!(deleted.stdout.contains("deleted"), "{}", deleted.stdout);
    assert!(
        eventually(Duration::from_secs(1), || async {
            !active(&app, &gateway, &app_token).await
        })
        .await,
        "the server still says active a second after the CLI deleted the app"
    );
    assert_error(
        app.client_credentials(&client, "read").await,
        Code::Unauthenticated,
        "invalid_client",
    );
    let again = authd(&app, &["app", "show", "--", &client.client_id], "").await;
    assert!(!again.success);
    assert!(again.stderr.contains("no application"), "{}", again.stderr);
}

#[tokio::test]
async fn cli_resets_a_password_read_from_standard_input_and_revokes_the_tokens() {
    let Setup { app, gateway, .. } = setup().await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    let alice = app.create_user("alice", false).await;
    let alice_token = app.user_token(&alice, &client, "read").await.access_token;
    assert!(active(&app, &gateway, &alice_token).await, "cached");

    let run = authd(
        &app,
        &["account", "reset-password", "--username", "alice", "--json"],
        "a brand new password\n",
    )
    .await;
    let out = run.json();
    assert_eq!(out["account"]["username"], "alice");
    assert_eq!(out["ended_sessions"], 1);
    assert_eq!(out["revoked_grants"], 1);
    assert!(!run.stdout.contains("a brand new password"));
    assert!(!run.stderr.contains("a brand new password"));

    assert_error(
        app.login(&email("alice"), PASSWORD).await,
        Code::Unauthenticated,
        "invalid_credentials",
    );
    app.login(&email("alice"), "a brand new password")
        .await
        .expect("the new password works");
    assert!(
        eventually(Duration::from_secs(1), || async {
            !active(&app, &gateway, &alice_token).await
        })
        .await,
        "the server still says active a second after the reset"
    );

    // A bad password is refused, and changes nothing.
    let short = authd(
        &app,
        &["account", "reset-password", "--username", "alice"],
        "short\n",
    )
    .await;
    assert!(!short.success);
    assert!(short.stderr.contains("too short"), "{}", short.stderr);
    app.login(&email("alice"), "a brand new password")
        .await
        .expect("unchanged");
}

#[tokio::test]
async fn cli_disables_and_enables_an_account() {
    let Setup { app, gateway, .. } = setup().await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    let alice = app.create_user("alice", false).await;
    let alice_token = app.user_token(&alice, &client, "read").await.access_token;
    assert!(active(&app, &gateway, &alice_token).await, "cached");

    let disabled = authd(
        &app,
        &["account", "disable", "--username", "alice", "--json"],
        "",
    )
    .await
    .json();
    assert_eq!(disabled["disabled"], true);
    assert_error(
        app.login(&email("alice"), PASSWORD).await,
        Code::PermissionDenied,
        "account_disabled",
    );
    assert!(
        eventually(Duration::from_secs(1), || async {
            !active(&app, &gateway, &alice_token).await
        })
        .await
    );

    let enabled = authd(&app, &["account", "enable", "--id", &alice.id], "").await;
    assert!(enabled.success, "{}", enabled.stderr);
    assert!(
        enabled.stdout.contains("enabled alice"),
        "{}",
        enabled.stdout
    );
    app.login(&email("alice"), PASSWORD)
        .await
        .expect("alice logs in again");
    assert!(active(&app, &gateway, &alice_token).await);
}

#[tokio::test]
async fn cli_revokes_tokens_by_account_and_by_app() {
    let Setup { app, gateway, .. } = setup().await;
    synced(&app).await;
    let client = app.register_app(&[OOB], "read").await;
    let other = app.register_app(&[OOB], "read").await;
    let alice = app.create_user("alice", false).await;
    let bob = app.create_user("bob", false).await;
    let alice_token = app.user_token(&alice, &client, "read").await.access_token;
    let bob_token = app.user_token(&bob, &client, "read").await.access_token;
    let other_token = app.user_token(&bob, &other, "read").await.access_token;
    for t in [&alice_token, &bob_token, &other_token] {
        assert!(active(&app, &gateway, t).await, "cached");
    }

    let by_account = authd(
        &app,
        &["token", "revoke", "--account-id", &alice.id, "--json"],
        "",
    )
    .await
    .json();
    assert_eq!(by_account["revoked_grants"], 1);
    assert!(
        eventually(Duration::from_secs(1), || async {
            !active(&app, &gateway, &alice_token).await
        })
        .await
    );
    assert!(active(&app, &gateway, &bob_token).await, "only alice's");

    let by_app = authd(
        &app,
        // `--client-id=` form: a client_id may begin with '-'.
        &[
            "token",
            "revoke",
            &format!("--client-id={}", client.client_id),
        ],
        "",
    )
    .await;
    assert!(by_app.success, "{}", by_app.stderr);
    assert!(
        by_app.stdout.contains("revoked 1 grant"),
        "{}",
        by_app.stdout
    );
    assert!(
        eventually(Duration::from_secs(1), || async {
            !active(&app, &gateway, &bob_token).await
        })
        .await
    );
    assert!(
        active(&app, &gateway, &other_token).await,
        "only that app's"
    );
}

#[tokio::test]
async fn cli_rotates_the_signing_key_and_the_running_server_signs_with_the_new_one() {
    let Setup { app, .. } = setup().await;
    synced(&app).await;
    let client = app.register_jwt_app("read").await;
    let old_jwt = app
        .client_credentials(&client, "read")
        .await
        .unwrap()
        .access_token;
    let old_kid = kid(&old_jwt);

    let run = authd(&app, &["key", "rotate", "--json"], "").await;
    let rotation = run.json();
    let new_kid = rotation["key"]["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        rotation["keys"].as_array().unwrap().len(),
        3,
        "one per algorithm"
    );
    let retired = rotation["retired"].as_array().unwrap();
    let old = retired
        .iter()
        .find(|k| k["kid"] == old_kid.as_str())
        .expect("the old key is retired");
    assert!(old["published_until"].is_string());
    assert!(!run.stdout.contains("private") && !run.stderr.contains("private"));

    assert!(
        eventually(Duration::from_secs(5), || async {
            let jwt = app
                .client_credentials(&client, "read")
                .await
                .unwrap()
                .access_token;
            kid(&jwt) == new_kid
        })
        .await,
        "the running server switched to the new key"
    );
    assert!(
        active(&app, &client, &old_jwt).await,
        "old JWTs still verify"
    );
    let kids = crate::admin::http_jwks_kids(&app).await;
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "{kids:?}"
    );

    let listed = authd(&app, &["key", "list"], "").await;
    assert!(listed.success, "{}", listed.stderr);
    let lines: Vec<&str> = listed.stdout.lines().collect();
    // Three new keys signing, newest first, then the three retired.
    assert_eq!(lines.len(), 6, "{}", listed.stdout);
    assert!(lines[..3].iter().all(|l| l.contains("signing since")));
    assert!(lines[..3].iter().any(|l| l.starts_with(&new_kid)));
    assert!(lines[3..].iter().all(|l| l.contains("published until")));
    assert!(lines[3..].iter().any(|l| l.starts_with(&old_kid)));
}

#[tokio::test]
async fn cli_admin_commands_report_bad_input_clearly() {
    let Setup { app, .. } = setup().await;
    // No account named: clap's usage error.
    let none = authd(&app, &["account", "disable"], "").await;
    assert_eq!(none.code, Some(2), "{}", none.stderr);
    // Two owners at once.
    let both = authd(
        &app,
        &["token", "revoke", "--username", "a", "--client-id", "b"],
        "",
    )
    .await;
    assert_eq!(both.code, Some(2), "{}", both.stderr);
    let unknown = authd(&app, &["token", "revoke", "--username", "nobody"], "").await;
    assert!(!unknown.success);
    assert!(
        unknown.stderr.contains("no account with username nobody"),
        "{}",
        unknown.stderr
    );
    let bad_name = authd(&app, &["account", "enable", "--username", "no way!"], "").await;
    assert!(!bad_name.success);
    assert!(
        bad_name.stderr.contains("not a valid username"),
        "{}",
        bad_name.stderr
    );
    // The password never comes from an argument.
    let argument = authd(
        &app,
        &[
            "account",
            "reset-password",
            "--username",
            "root",
            "--password",
            "x",
        ],
        "",
    )
    .await;
    assert_eq!(argument.code, Some(2), "{}", argument.stderr);
    // A client_id may begin with '-' (base64url): taken as the client_id,
    // with or without `--`, not as an unknown flag.
    for args in [
        &["app", "resource-server", "-Fno-such-app"][..],
        &["app", "resource-server", "--off", "-Fno-such-app"],
        &["app", "show", "-Fno-such-app"],
    ] {
        let hyphen = authd(&app, args, "").await;
        assert!(!hyphen.success);
        assert!(
            hyphen.stderr.contains("-Fno-such-app")
                && !hyphen.stderr.contains("unexpected argument"),
            "{args:?}: {}",
            hyphen.stderr
        );
    }
    // Accounts are numbered from 1: id 0 is refused by the parser.
    let zero = authd(&app, &["token", "revoke", "--account-id", "0"], "").await;
    assert_eq!(zero.code, Some(2), "{}", zero.stderr);
    // Nothing changed meanwhile.
    app.login(&email("root"), PASSWORD).await.unwrap();
}

#[tokio::test]
async fn cli_allows_and_forbids_admin_scopes_for_client_credentials() {
    let Setup { app, gateway, .. } = setup().await;
    synced(&app).await;
    let service = app.register_app(&[OOB], "read admin:read").await;
    assert_error(
        app.client_credentials(&service, "admin:read").await,
        Code::InvalidArgument,
        "invalid_scope",
    );

    let allowed = authd(
        &app,
        &["app", "admin-scopes", "--json", "--", &service.client_id],
        "",
    )
    .await
    .json();
    assert_eq!(allowed["app"]["admin_scopes"], true, "{allowed}");
    // The running server hears of it through the database's notification,
    // which drops the app it has cached; until then it answers as before.
    let started = std::time::Instant::now();
    let token = loop {
        let granted = app
            .client_credentials(&service, "read admin:read")
            .await
            .unwrap();
        if granted.scope == "read admin:read" {
            break granted;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still {}",
            granted.scope
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let shown = authd(&app, &["app", "show", "--", &service.client_id], "").await;
    assert!(
        shown
            .stdout
            .contains("admin scopes        through client_credentials"),
        "{}",
        shown.stdout
    );
    let scope = || async {
        app.introspect(&gateway, &token.access_token)
            .await
            .scope
            .unwrap_or_default()
    };
    assert_eq!(scope().await, "read admin:read", "cached now");

    // Forbidden again, from another process: the running server hears of
    // it through the database and drops the admin scopes of the token.
    let forbidden = authd(
        &app,
        &["app", "admin-scopes", "--off", "--", &service.client_id],
        "",
    )
    .await;
    assert!(forbidden.success, "{}", forbidden.stderr);
    assert!(
        forbidden.stdout.contains("may not be granted admin scopes"),
        "{}",
        forbidden.stdout
    );
    assert!(
        eventually(Duration::from_secs(2), || async { scope().await == "read" }).await,
        "still {}",
        scope().await
    );
    let unknown = authd(&app, &["app", "admin-scopes", "nope"], "").await;
    assert!(!unknown.success);
    assert!(
        unknown.stderr.contains("no application"),
        "{}",
        unknown.stderr
    );
}

/// `authd key list` with the key-encryption key from a file, not the
/// environment.
async fn key_list_with_kek_file(app: &TestApp, file: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .args(["key", "list", "--key-encryption-key-file"])
        .arg(file)
        .env("DATABASE_URL", database_url(app))
        .env_remove("AUTHD_KEY_ENCRYPTION_KEY")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run authd")
}

#[tokio::test]
async fn the_key_encryption_key_file_opens_the_keys_and_a_missing_one_is_made_but_opens_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("authd-kek-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.key", app.application().grpc_addr().port()));
    std::fs::write(&file, app.key_encryption_key().to_base64()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let listed = key_list_with_kek_file(&app, &file).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 3);

    // A file that is not there yet is made (0600, a new key), and that key
    // opens none of this database's signing keys: refused, naming the flag.
    let fresh = dir.join(format!("{}-new.key", app.application().grpc_addr().port()));
    let _ = std::fs::remove_file(&fresh);
    let refused = key_list_with_kek_file(&app, &fresh).await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--key-encryption-key-file"), "{stderr}");
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&fresh);
}
