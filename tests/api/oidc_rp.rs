//! Real OpenID Connect relying parties against authd (issue 17): Apache
//! httpd with mod_auth_openidc protecting a page, signed in to through
//! authd's pages in headless Chromium, and signed out of at both.
//!
//! Apache comes from Debian's packages (`apache2`,
//! `libapache2-mod-auth-openidc`), installed with apt-get when missing and
//! we are root, as chromium is for the browser test. Its configuration is
//! tests/e2e/apache-oidc.conf, the one the README shows, filled in here.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::e2e::{chromium, python, run_checked, run_client};
use crate::helpers::*;

const MOD_AUTH_OPENIDC: &str = "/usr/lib/apache2/modules/mod_auth_openidc.so";

/// The page behind mod_auth_openidc: the claims it passed on, as JSON.
const PAGE: &str = r#"<!DOCTYPE html>
<title>Signed in with authd</title>
<pre id="claims">{"sub": "<!--#echo var="OIDC_CLAIM_sub" encoding="none" -->", "preferred_username": "<!--#echo var="OIDC_CLAIM_preferred_username" encoding="none" -->", "email": "<!--#echo var="OIDC_CLAIM_email" encoding="none" -->", "remote_user": "<!--#echo var="REMOTE_USER" encoding="none" -->"}</pre>
"#;

/// Debian's apache2 binary, with mod_auth_openidc.
fn apache2() -> &'static Path {
    static APACHE2: OnceLock<PathBuf> = OnceLock::new();
    APACHE2.get_or_init(|| {
        let apache2 = PathBuf::from("/usr/sbin/apache2");
        if apache2.exists() && Path::new(MOD_AUTH_OPENIDC).exists() {
            return apache2;
        }
        let root = nix::unistd::Uid::effective().is_root();
        assert!(
            root && Path::new("/usr/bin/apt-get").exists(),
            "the relying party test needs Debian's apache2 and libapache2-mod-auth-openidc packages"
        );
        eprintln!("installing Debian's apache2 and mod_auth_openidc (apt-get)");
        run_checked(
            Command::new("apt-get").args(["update", "-qq"]),
            "apt-get update",
        );
        run_checked(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "apache2",
                    "libapache2-mod-auth-openidc",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install apache2 libapache2-mod-auth-openidc",
        );
        apache2
    })
}

/// Apache in the foreground (`-X`) on a free loopback port, its server
/// root a fresh folder under target/; stopped when dropped.
struct Apache {
    root: PathBuf,
    port: u16,
    _process: tokio::process::Child,
}

impl Apache {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn redirect_uri(port: u16) -> String {
        format!("http://127.0.0.1:{port}/protected/redirect_uri")
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.root.join("error.log")).unwrap_or_default()
    }

    async fn start(authd: &str, port: u16, client: &TestClient) -> Apache {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("apache-oidc-{port}"));
        let _ = std::fs::remove_dir_all(&root);
        let protected = root.join("htdocs/protected");
        std::fs::create_dir_all(&protected).expect("the server root");
        std::fs::write(protected.join("index.shtml"), PAGE).expect("the page");
        std::fs::write(
            root.join("htdocs/signed-out.html"),
            "<!DOCTYPE html><title>Signed out</title><p>Signed out of the site.</p>\n",
        )
        .expect("the signed-out page");
        // As root, Apache serves as www-data, which must read the pages.
        let root_user = nix::unistd::Uid::effective().is_root();
        if root_user {
            use std::os::unix::fs::PermissionsExt;
            for dir in [root.clone(), root.join("htdocs"), protected.clone()] {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
        }
        let template = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/apache-oidc.conf"),
        )
        .expect("tests/e2e/apache-oidc.conf");
        let config = template
            .replace("@ROOT@", root.to_str().expect("utf-8 path"))
            .replace("@PORT@", &port.to_string())
            .replace("@AUTHD@", authd)
            .replace("@CLIENT_ID@", &client.client_id)
            .replace("@CLIENT_SECRET@", &client.client_secret)
            .replace(
                "@PASSPHRASE@",
                &format!("passphrase-{port}-{}", client.client_id),
            )
            .replace(
                "@USER@",
                if root_user {
                    "User www-data\nGroup www-data"
                } else {
                    ""
                },
            );
        let conf = root.join("httpd.conf");
        std::fs::write(&conf, config).expect("httpd.conf");
        let process = tokio::process::Command::new(apache2())
            .arg("-X")
            .arg("-f")
            .arg(&conf)
            .env("APACHE_RUN_DIR", &root)
            .env("APACHE_LOCK_DIR", &root)
            .kill_on_drop(true)
            .spawn()
            .expect("start apache2");
        let apache = Apache {
            root,
            port,
            _process: process,
        };
        // Bounded: 200 tries, 50 ms apart.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return apache;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Apache did not listen in 10 s:\n{}", apache.error_log());
    }
}

#[tokio::test]
async fn apache_mod_auth_openidc_signs_in_through_authd_sees_the_claims_and_signs_out_at_both() {
    let app = spawn_app_on_its_own_url(TestOptions::default()).await;
    let alice = app.create_user("alice", false).await.id;
    let port = free_port();
    let post_logout = format!("http://127.0.0.1:{port}/signed-out.html");
    // RFC 7591 registration, as a site's operator would do it; RS256, since
    // Debian's mod_auth_openidc (cjose) verifies no EdDSA.
    let response = app
        .http()
        .post(app.url("/oauth/register"))
        .json(&serde_json::json!({
            "client_name": "Apache httpd",
            "redirect_uris": [Apache::redirect_uri(port)],
            "post_logout_redirect_uris": [post_logout],
            "scope": "openid profile email",
            "token_endpoint_auth_method": "client_secret_basic",
            "id_token_signed_response_alg": "RS256",
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let registered: serde_json::Value = response.json().await.unwrap_or_default();
    assert_eq!(status, 201, "POST /oauth/register (RFC 7591): {registered}");
    let client = TestClient {
        client_id: registered["client_id"]
            .as_str()
            .expect("a client_id")
            .into(),
        client_secret: registered["client_secret"]
            .as_str()
            .expect("a client_secret")
            .into(),
        app_id: String::new(),
    };
    let apache = Apache::start(&app.url(""), port, &client).await;
    let chromium = chromium().to_str().expect("utf-8 path").to_owned();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        run_client(
            &app,
            python(),
            "apache_oidc.py",
            &[
                ("AUTHD_CHROMIUM", &chromium),
                ("APACHE_URL", &apache.url("")),
                ("POST_LOGOUT_URL", &post_logout),
            ],
        ),
    )
    .await;
    let log = apache.error_log();
    let out =
        out.unwrap_or_else(|_| panic!("the browser took over two minutes; Apache's log:\n{log}"));
    assert!(
        out["error"].is_null(),
        "the browser's walk through Apache failed: {out}\nApache's error log:\n{log}"
    );
    let claims = &out["claims"];
    assert_eq!(claims["preferred_username"], "alice", "{out}\n{log}");
    assert_eq!(claims["email"], email("alice"), "{out}\n{log}");
    assert_eq!(
        claims["sub"],
        alice.as_str(),
        "sub is the account's id: {out}"
    );
    assert_eq!(
        claims["remote_user"],
        alice.as_str(),
        "REMOTE_USER is sub: {out}"
    );
    assert_eq!(
        out["claims_again"], *claims,
        "the Apache session holds: {out}"
    );
    let hops: Vec<&str> = out["logout_hops"]
        .as_array()
        .map(|hops| hops.iter().filter_map(|hop| hop.as_str()).collect())
        .unwrap_or_default();
    let end_session = hops
        .iter()
        .find(|hop| hop.starts_with(&app.url("/oauth/end_session?")))
        .unwrap_or_else(|| panic!("no visit to authd's end_session_endpoint: {out}\n{log}"));
    let params: std::collections::HashMap<String, String> = url::Url::parse(end_session)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(params.contains_key("id_token_hint"), "{end_session}");
    assert_eq!(
        params.get("post_logout_redirect_uri"),
        Some(&post_logout),
        "{end_session}"
    );
    assert!(
        out["after_logout_url"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&post_logout),
        "authd sent the browser back to the registered post_logout_redirect_uri: {out}\n{log}"
    );
    assert!(
        out["after_logout_text"]
            .as_str()
            .unwrap_or_default()
            .contains("Signed out of the site"),
        "{out}"
    );
    assert_eq!(
        out["login_again"], true,
        "after logout, the page sends the browser to authd's login: {out}\n{log}"
    );
}

#[test]
fn the_readmes_apache_example_is_the_configuration_the_test_runs() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## Sign in with authd")
        .nth(1)
        .expect("a Sign in with authd section");
    let example = section
        .split("```apache\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("an apache block");
    let template = include_str!("../e2e/apache-oidc.conf")
        .replace("@AUTHD@", "http://127.0.0.1:8080")
        .replace("@PORT@", "8081")
        .replace("@CLIENT_ID@", "CLIENT_ID")
        .replace("@CLIENT_SECRET@", "CLIENT_SECRET")
        .replace("@PASSPHRASE@", "A_LONG_RANDOM_PASSPHRASE");
    let lines: Vec<&str> = template.lines().collect();
    for line in example.lines().filter(|line| !line.is_empty()) {
        assert!(
            lines.contains(&line),
            "the README's line is not in tests/e2e/apache-oidc.conf: {line:?}"
        );
    }
}
