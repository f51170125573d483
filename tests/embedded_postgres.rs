//! Exercises the embedded PostgreSQL module against the machine's real server binaries.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authd::embedded_postgres::{
    EmbeddedPostgres, EmbeddedPostgresError, EmbeddedPostgresOptions, throwaway,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, geteuid};

/// Every test that starts a server is wrapped in this so a hang fails instead of stalling CI.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "authd=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "authd-pg-it-{tag}-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ))
}

fn options(data_dir: PathBuf, durable: bool) -> EmbeddedPostgresOptions {
    EmbeddedPostgresOptions {
        data_dir,
        durable,
        run_as: None,
        port: 5433,
        max_connections: 20,
    }
}

async fn client(pg: &EmbeddedPostgres, db: &str) -> tokio_postgres::Client {
    let (client, conn) = pg
        .connect_config(db)
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

fn postmaster_pid(data_dir: &Path) -> i32 {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).expect("postmaster.pid");
    text.lines()
        .next()
        .expect("pid line")
        .trim()
        .parse()
        .expect("pid")
}

/// Alive and not a zombie (an orphaned postgres is reparented to a pid 1 that may never reap).
fn alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

async fn wait_dead(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    !alive(pid)
}

#[tokio::test]
async fn throwaway_cluster_roundtrip() {
    init_tracing();
    tokio::time::timeout(TEST_TIMEOUT, async {
        let pg = throwaway::start().await.expect("start");
        assert_eq!(pg.superuser(), "authd");
        let data_dir = pg.data_dir().to_path_buf();
        assert!(data_dir.starts_with(std::env::temp_dir().join("authd-test-pg")));
        pg.ensure_database("x").await.expect("ensure x");
        pg.ensure_database("x")
            .await
            .expect("ensure x again is a no-op");
        assert!(matches!(
            pg.ensure_database("x; DROP").await,
            Err(EmbeddedPostgresError::InvalidDatabaseName(_))
        ));
        let c = client(&pg, "x").await;
        c.batch_execute("CREATE TABLE t (v int); INSERT INTO t VALUES (41), (1)")
            .await
            .expect("ddl");
        let row = c
            .query_one("SELECT sum(v)::int FROM t", &[])
            .await
            .expect("q");
        assert_eq!(row.get::<_, i32>(0), 42);
        let fsync: String = c.query_one("SHOW fsync", &[]).await.expect("show").get(0);
        assert_eq!(fsync, "off");
        let listen: String = c
            .query_one("SHOW listen_addresses", &[])
            .await
            .expect("show")
            .get(0);
        assert_eq!(listen, "");
        drop(c);
        pg.stop().await.expect("stop");
        assert!(!data_dir.exists(), "throwaway dir removed on stop");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn durable_cluster_survives_restart() {
    init_tracing();
    let dir = temp_path("durable");
    tokio::time::timeout(TEST_TIMEOUT, async {
        let pg = EmbeddedPostgres::start(options(dir.clone(), true))
            .await
            .expect("start 1");
        pg.ensure_database("authd").await.expect("ensure");
        let c = client(&pg, "authd").await;
        let fsync: String = c.query_one("SHOW fsync", &[]).await.expect("show").get(0);
        assert_eq!(fsync, "on");
        c.batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
            .await
            .expect("ddl");
        drop(c);
        pg.stop().await.expect("stop 1");
        assert!(!dir.join("postmaster.pid").exists());

        let pg = EmbeddedPostgres::start(options(dir.clone(), true))
            .await
            .expect("start 2");
        pg.ensure_database("authd").await.expect("ensure again");
        let c = client(&pg, "authd").await;
        let v: String = c
            .query_one("SELECT v FROM kept", &[])
            .await
            .expect("select")
            .get(0);
        assert_eq!(v, "still here");
        drop(c);
        pg.stop().await.expect("stop 2");
        assert!(dir.join("PG_VERSION").exists(), "durable dir is kept");
        assert!(dir.join("postgres.log").exists());
    })
    .await
    .expect("test timed out");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Processes (postmaster or orphaned backends) whose cwd is `data_dir`.
fn processes_in(data_dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == data_dir)
        })
        .collect()
}

#[tokio::test]
async fn restart_after_crash_recovers_stale_postmaster_pid() {
    init_tracing();
    let dir = temp_path("crash");
    tokio::time::timeout(TEST_TIMEOUT, async {
        let pg = EmbeddedPostgres::start(options(dir.clone(), false))
            .await
            .expect("start 1");
        let data_dir = pg.data_dir().to_path_buf();
        let crashed = postmaster_pid(&data_dir);
        kill(Pid::from_raw(crashed), Signal::SIGKILL).expect("kill postmaster");
        assert!(wait_dead(crashed, Duration::from_secs(10)).await);
        // Its backends notice the postmaster's death on their own; wait so that postgres's
        // shared-memory interlock does not (rightly) refuse the restart.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !processes_in(&data_dir).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            postmaster_pid(&data_dir),
            crashed,
            "crash left postmaster.pid behind"
        );
        // Stopping a server that already died is not an error.
        pg.stop().await.expect("stop crashed");

        let pg = EmbeddedPostgres::start(options(dir.clone(), false))
            .await
            .expect("start over a stale postmaster.pid");
        let c = client(&pg, "postgres").await;
        c.simple_query("SELECT 1").await.expect("query");
        drop(c);
        assert_ne!(postmaster_pid(&data_dir), crashed);
        pg.stop().await.expect("stop 2");
    })
    .await
    .expect("test timed out");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postmaster_pid_reused_by_another_process_is_recovered() {
    init_tracing();
    let dir = temp_path("reused");
    tokio::time::timeout(TEST_TIMEOUT, async {
        let pg = EmbeddedPostgres::start(options(dir.clone(), false))
            .await
            .expect("start 1");
        let data_dir = pg.data_dir().to_path_buf();
        let lock = std::fs::read_to_string(data_dir.join("postmaster.pid")).expect("read lock");
        pg.stop().await.expect("stop 1");

        // As after a container restart: the old postmaster's pid now belongs to something else.
        // Postgres only mistakes a process of its own user for a running server.
        let mut sleep = Command::new("sleep");
        sleep.arg("60");
        if geteuid().is_root() {
            use std::os::unix::process::CommandExt;
            let user = nix::unistd::User::from_name("postgres")
                .expect("getpwnam")
                .expect("postgres user");
            sleep.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        let mut other = sleep.spawn().expect("spawn sleep");
        let (_, rest) = lock.split_once('\n').expect("lock lines");
        std::fs::write(
            data_dir.join("postmaster.pid"),
            format!("{}\n{rest}", other.id()),
        )
        .expect("write stale lock");

        let started = EmbeddedPostgres::start(options(dir.clone(), false)).await;
        let _ = other.kill();
        let _ = other.wait();
        let pg = started.expect("start over a postmaster.pid naming an unrelated process");
        let c = client(&pg, "postgres").await;
        c.simple_query("SELECT 1").await.expect("query");
        drop(c);
        pg.stop().await.expect("stop 2");
    })
    .await
    .expect("test timed out");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn second_server_on_same_data_dir_is_refused() {
    init_tracing();
    let dir = temp_path("busy");
    tokio::time::timeout(TEST_TIMEOUT, async {
        let pg = EmbeddedPostgres::start(options(dir.clone(), false))
            .await
            .expect("start");
        let running = postmaster_pid(&dir);
        match EmbeddedPostgres::start(options(dir.clone(), false)).await {
            Err(e @ EmbeddedPostgresError::AlreadyRunning { pid, .. }) => {
                assert_eq!(pid, running);
                let msg = e.to_string();
                assert!(msg.contains(&running.to_string()), "{msg}");
                assert!(msg.contains(&pg.data_dir().display().to_string()), "{msg}");
            }
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("second server started on a busy data dir"),
        }
        // The refused attempt must not have disturbed the running server.
        let c = client(&pg, "postgres").await;
        c.simple_query("SELECT 1").await.expect("query");
        drop(c);
        pg.stop().await.expect("stop");
    })
    .await
    .expect("test timed out");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn long_data_dir_uses_short_socket_dir() {
    init_tracing();
    let top = temp_path("long");
    let dir = top.join("x".repeat(60)).join("y".repeat(60));
    tokio::time::timeout(TEST_TIMEOUT, async {
        let pg = EmbeddedPostgres::start(options(dir.clone(), false))
            .await
            .expect("start");
        let socket_dir = pg.socket_dir().to_path_buf();
        assert!(
            socket_dir.starts_with("/tmp") && socket_dir.to_string_lossy().contains("authd-pg-"),
            "{}",
            socket_dir.display()
        );
        let c = client(&pg, "postgres").await;
        c.simple_query("SELECT 1").await.expect("query");
        drop(c);
        pg.stop().await.expect("stop");
        let _ = std::fs::remove_dir(&socket_dir);
    })
    .await
    .expect("test timed out");
    let _ = std::fs::remove_dir_all(&top);
}

#[test]
fn find_binaries_returns_usable_initdb() {
    let bins = EmbeddedPostgres::find_binaries().expect("binaries");
    assert!(bins.initdb.is_absolute());
    assert_eq!(bins.initdb.parent(), Some(bins.bindir.as_path()));
    let out = Command::new(&bins.initdb)
        .arg("--version")
        .output()
        .expect("run initdb");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("initdb (PostgreSQL)"), "{text}");
}

#[tokio::test]
async fn untraversable_parent_is_named() {
    if !geteuid().is_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let top = temp_path("private");
    let private = top.join("private");
    std::fs::create_dir_all(&private).expect("mkdir");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let result = tokio::time::timeout(
        TEST_TIMEOUT,
        EmbeddedPostgres::start(options(private.join("data"), false)),
    )
    .await
    .expect("test timed out");
    match result {
        Err(EmbeddedPostgresError::NotTraversable { dir, user }) => {
            assert_eq!(dir, private.canonicalize().expect("canon"));
            assert_eq!(user, "postgres");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(pg) => {
            let _ = pg.stop().await;
            panic!("started in an untraversable dir");
        }
    }
    let _ = std::fs::remove_dir_all(&top);
}

#[tokio::test]
async fn drop_without_stop_shuts_server_down() {
    init_tracing();
    tokio::time::timeout(TEST_TIMEOUT, async {
        let pg = throwaway::start().await.expect("start");
        let dir = pg.data_dir().to_path_buf();
        let pid = postmaster_pid(&dir);
        drop(pg);
        assert!(
            wait_dead(pid, Duration::from_secs(30)).await,
            "postgres {pid} still running after drop"
        );
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("test timed out");
}

/// `authd serve` on its embedded default, with a data dir of its own and a
/// random gRPC port; returns once it is listening.
fn spawn_authd(data_dir: &Path) -> std::process::Child {
    spawn_authd_with_addr(data_dir).0
}

/// Like `spawn_authd`, also returning the gRPC address it bound.
fn spawn_authd_with_addr(data_dir: &Path) -> (std::process::Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authd"));
    command
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env_remove("DATABASE_URL");
    spawn_until_logged(command, "authd gRPC listening", "grpc_addr=")
}

/// Spawns `command` and waits for its log line containing `marker`;
/// returns the child and the value after `key` on that line.
fn spawn_until_logged(
    mut command: Command,
    marker: &str,
    key: &str,
) -> (std::process::Child, String) {
    let mut child = command
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn authd");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let (wanted, key) = (marker.to_owned(), key.to_owned());
    std::thread::spawn(move || {
        let mut ready = Some(tx);
        // Keep draining after readiness, so authd never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&wanted)
                && let Some(tx) = ready.take()
            {
                let value = line
                    .split(&key)
                    .nth(1)
                    .unwrap_or_default()
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(value);
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(value) => (child, value),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("authd did not log {marker:?}");
        }
    }
}

/// SIGTERM, then the exit status, waited for off the runtime.
async fn terminate(child: std::process::Child) -> std::process::ExitStatus {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await
    .expect("join")
    .expect("reap")
}

#[tokio::test]
async fn the_shim_alone_serves_http_in_front_of_a_remote_core() {
    init_tracing();
    let data_dir = temp_path("authd-shim");
    let (core, grpc_addr) = spawn_authd_with_addr(&data_dir);
    let mut command = Command::new(env!("CARGO_BIN_EXE_authd"));
    command.args([
        "shim",
        "--upstream",
        &format!("http://{grpc_addr}"),
        "--http-addr",
        "127.0.0.1:0",
        "--upstream-timeout",
        "2s",
    ]);
    let (shim, http_addr) = spawn_until_logged(command, "authd shim listening", "http_addr=");
    let base = format!("http://{http_addr}");
    let http = reqwest::Client::new();

    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let app: serde_json::Value = http
        .post(format!("{base}/api/v1/apps"))
        .json(&serde_json::json!({"client_name": "via the shim", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let (id, secret) = (
        app["client_id"].as_str().unwrap(),
        app["client_secret"].as_str().unwrap(),
    );
    let token: serde_json::Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let access_token = token["access_token"].as_str().expect("access_token");
    let facts: serde_json::Value = http
        .post(format!("{base}/oauth/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", access_token)])
        .send()
        .await
        .expect("introspect")
        .json()
        .await
        .expect("json");
    assert_eq!(facts["active"], true, "{facts}");

    // Without its core, the shim answers 503 promptly, and says why.
    assert!(terminate(core).await.success());
    let started = std::time::Instant::now();
    let down = http
        .get(format!("{base}/api/v1/apps/verify_credentials"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("request");
    assert_eq!(down.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    let body: serde_json::Value = down.json().await.expect("a JSON error");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );

    assert!(terminate(shim).await.success());
    let _ = std::fs::remove_dir_all(&data_dir);
}

fn authd_command(args: &[&str], data_dir: &Path, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_authd"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn authd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("authd output")
}

#[tokio::test]
async fn operator_commands_work_while_the_service_runs() {
    init_tracing();
    let data_dir = temp_path("authd-cli");
    let (authd, addr) = spawn_authd_with_addr(&data_dir);

    let out = authd_command(
        &[
            "account",
            "create",
            "--username",
            "admin",
            "--email",
            "admin@example.org",
            "--admin",
        ],
        &data_dir,
        "an admin password\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("created account admin (id 1), admin"),
        "{stdout}"
    );
    for _ in 0..2 {
        let out = authd_command(&["migrate"], &data_dir, "");
        assert!(out.status.success(), "migrate twice is harmless");
    }
    let dup = authd_command(
        &[
            "account",
            "create",
            "--username",
            "admin",
            "--email",
            "other@example.org",
        ],
        &data_dir,
        "an admin password\n",
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("Username has already been taken"));

    // The account exists in the service's database: it can log in.
    let mut sessions =
        authd::proto::v1::sessions_client::SessionsClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
    let login = sessions
        .login(authd::proto::v1::LoginRequest {
            email: "admin@example.org".into(),
            password: "an admin password".into(),
        })
        .await
        .expect("login")
        .into_inner();
    assert!(login.account.expect("account").admin);
    drop(sessions);

    kill(Pid::from_raw(authd.id() as i32), Signal::SIGTERM).expect("stop authd");
    // Wait off the runtime, so the dropped client's connection closes.
    let status = tokio::task::spawn_blocking(move || {
        let mut authd = authd;
        authd.wait()
    })
    .await
    .expect("join")
    .expect("reap authd");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn private_postgres_dies_with_a_killed_authd() {
    init_tracing();
    let data_dir = temp_path("authd-killed");
    let mut authd = spawn_authd(&data_dir);
    let pid = postmaster_pid(&data_dir);
    assert!(alive(pid));
    // SIGKILL: no destructors, no stop(); only the parent-death signal can save us.
    kill(Pid::from_raw(authd.id() as i32), Signal::SIGKILL).expect("kill authd");
    authd.wait().expect("reap authd");
    assert!(
        wait_dead(pid, Duration::from_secs(30)).await,
        "postgres {pid} outlived authd"
    );
    // And the next start on the same data dir recovers.
    let mut again = spawn_authd(&data_dir);
    kill(Pid::from_raw(again.id() as i32), Signal::SIGTERM).expect("stop authd");
    again.wait().expect("reap authd");
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn sigterm_stops_authd_and_its_private_postgres_cleanly() {
    init_tracing();
    let data_dir = temp_path("authd-term");
    let mut authd = spawn_authd(&data_dir);
    let pid = postmaster_pid(&data_dir);
    kill(Pid::from_raw(authd.id() as i32), Signal::SIGTERM).expect("SIGTERM authd");
    let status = authd.wait().expect("reap authd");
    assert!(status.success(), "authd exited with {status}");
    assert!(
        !alive(pid),
        "postgres {pid} was stopped before authd exited"
    );
    assert!(
        !data_dir.join("postmaster.pid").exists(),
        "a clean shutdown removes postmaster.pid"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn startup_failure_reports_log_tail() {
    init_tracing();
    let dir = temp_path("badconf");
    let mut opts = options(dir.clone(), false);
    // Below superuser_reserved_connections, which postgres rejects at startup.
    opts.max_connections = 1;
    let result = tokio::time::timeout(TEST_TIMEOUT, EmbeddedPostgres::start(opts))
        .await
        .expect("test timed out");
    match result {
        Err(e @ EmbeddedPostgresError::Startup { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("exited during startup"), "{msg}");
            assert!(msg.contains("max_connections"), "{msg}");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(pg) => {
            let _ = pg.stop().await;
            panic!("started with max_connections=1");
        }
    }
    assert!(!dir.join("postmaster.pid").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unknown_run_as_user_is_reported() {
    if !geteuid().is_root() {
        return;
    }
    let dir = temp_path("nouser");
    let mut opts = options(dir.clone(), false);
    opts.run_as = Some("authd-no-such-user".into());
    match EmbeddedPostgres::start(opts).await {
        Err(EmbeddedPostgresError::UnknownUser(name)) => assert_eq!(name, "authd-no-such-user"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(pg) => {
            let _ = pg.stop().await;
            panic!("started as a nonexistent user");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pattern of authd's test harness: started on a short-lived thread with a runtime of
/// its own, used afterwards from other runtimes. The parent-death signal is tied to the
/// forking thread, so this fails if postgres is forked from a thread that goes away.
#[test]
fn cluster_outlives_the_thread_and_runtime_that_started_it() {
    init_tracing();
    let pg = std::thread::spawn(|| {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(throwaway::start()).expect("start")
    })
    .join()
    .expect("starter thread");
    let pid = postmaster_pid(pg.data_dir());
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(pid), "postgres died with the thread that started it");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, async {
            pg.ensure_database("later").await.expect("ensure");
            let c = client(&pg, "later").await;
            c.simple_query("SELECT 1").await.expect("query");
            drop(c);
            pg.stop().await.expect("stop");
        })
        .await
        .expect("test timed out");
    });
}

/// One client_credentials token over the shim; Some(token) only on a 200.
async fn issue(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> Option<String> {
    let response = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    Some(body["access_token"].as_str()?.to_owned())
}

#[tokio::test]
async fn a_killed_private_postgres_is_restarted_and_keeps_every_issued_token() {
    init_tracing();
    let data_dir = temp_path("authd-supervised");
    let mut command = Command::new(env!("CARGO_BIN_EXE_authd"));
    command
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data_dir)
        .env_remove("DATABASE_URL");
    let (authd, http_addr) = spawn_until_logged(command, "authd HTTP listening", "http_addr=");
    let base = format!("http://{http_addr}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let app: serde_json::Value = http
        .post(format!("{base}/api/v1/apps"))
        .json(&serde_json::json!({"client_name": "under load", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let id = app["client_id"].as_str().unwrap().to_owned();
    let secret = app["client_secret"].as_str().unwrap().to_owned();

    // Light load: two issuers in a loop; the postmaster is killed while they run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut issuers = Vec::new();
    for _ in 0..2 {
        let (http, base, id, secret, stop) = (
            http.clone(),
            base.clone(),
            id.clone(),
            secret.clone(),
            stop.clone(),
        );
        issuers.push(tokio::spawn(async move {
            let mut issued = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(token) = issue(&http, &base, &id, &secret).await {
                    issued.push(token);
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            issued
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let crashed = postmaster_pid(&data_dir);
    kill(Pid::from_raw(crashed), Signal::SIGKILL).expect("kill postmaster");

    // authd starts it again by itself, within a bound.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "authd did not serve again after its PostgreSQL was killed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ready = http.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200)
            && issue(&http, &base, &id, &secret).await.is_some()
        {
            break;
        }
    }
    assert_ne!(postmaster_pid(&data_dir), crashed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut issued = Vec::new();
    for issuer in issuers {
        issued.extend(issuer.await.expect("issuer"));
    }
    assert!(!issued.is_empty());

    // Every token that was answered 200 survived the crash.
    for token in &issued {
        let facts: serde_json::Value = http
            .post(format!("{base}/oauth/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .expect("introspect")
            .json()
            .await
            .expect("json");
        assert_eq!(
            facts["active"], true,
            "a token answered 200 was lost: {facts}"
        );
    }
    assert!(terminate(authd).await.success());
    let _ = std::fs::remove_dir_all(&data_dir);
}
