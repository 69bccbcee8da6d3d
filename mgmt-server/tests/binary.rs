//! `mgmt-server run` as a process: with no DATABASE_URL it runs a private PostgreSQL
//! under its data directory, creates the initial administrator, serves the API over
//! HTTPS with a certificate of its internal CA (written to DATA_DIR/ca.pem), and on
//! SIGTERM stops cleanly, its cluster with it; started again it reuses the data.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_mgmt-server");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data: &std::path::Path, port: u16) -> Server {
    Server(
        Command::new(BINARY)
            .args([
                "run",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--initial-admin",
                "admin",
            ])
            .arg("--data-dir")
            .arg(data)
            .env("MGMT_SERVER_INITIAL_ADMIN_PASSWORD", "First-Admin-1!")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.with_extension("log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Logs in over HTTPS, trusting only the manager's CA; the access token.
fn login(data: &std::path::Path, port: u16) -> Result<String, String> {
    let ca = std::fs::read(data.join("ca.pem")).map_err(|e| e.to_string())?;
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).map_err(|e| e.to_string())?])
        .build()
        .map_err(|e| e.to_string())?;
    let answer = client
        .post(format!(
            "https://127.0.0.1:{port}/api/fmc_platform/v1/auth/generatetoken"
        ))
        .basic_auth("admin", Some("First-Admin-1!"))
        .send()
        .map_err(|e| e.to_string())?;
    answer
        .headers()
        .get("X-auth-access-token")
        .map(|t| t.to_str().unwrap().to_owned())
        .ok_or_else(|| format!("no token: {}", answer.status()))
}

fn wait_for_login(server: &mut Server, data: &std::path::Path, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match login(data, port) {
            Ok(token) => return token,
            Err(e) => {
                if let Some(status) = server.0.try_wait().unwrap() {
                    panic!(
                        "mgmt-server exited with {status}: {}",
                        std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
                    );
                }
                assert!(Instant::now() < deadline, "never answered: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn terminate(server: &mut Server) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "mgmt-server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn mgmt_server_runs_its_own_postgres_serves_https_and_stops_cleanly_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let mut server = start(&data, port);
    let token = wait_for_login(&mut server, &data, port);
    assert!(!token.is_empty());
    assert!(
        data.join("postgres")
            .join("data")
            .join("PG_VERSION")
            .exists()
    );
    let ca_before = std::fs::read_to_string(data.join("ca.pem")).unwrap();
    assert!(terminate(&mut server).success());
    assert!(
        !data
            .join("postgres")
            .join("data")
            .join("postmaster.pid")
            .exists(),
        "the private cluster is still running"
    );

    // Again: same CA (kept in the database), same administrator.
    let mut again = start(&data, port);
    wait_for_login(&mut again, &data, port);
    assert_eq!(
        std::fs::read_to_string(data.join("ca.pem")).unwrap(),
        ca_before
    );
    assert!(terminate(&mut again).success());
}
