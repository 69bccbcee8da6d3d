use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::net::UnixStream;
use tokio::sync::watch;
use vpn_core::cli::Command;
use vpn_core::pool::PoolSet;

use super::*;
use crate::sessions::{SessionDb, SessionDbSettings, TlsTunnelSetup};
use crate::testing::{new_session, sample_config};

/// A context with the sample config and sessions for `users`.
fn context(users: &[&str]) -> ControlContext {
    let config = sample_config();
    let db = SessionDb::new(
        PoolSet::from_device_config(&config).unwrap(),
        SessionDbSettings::default(),
    );
    for user in users {
        db.login(new_session(user), OffsetDateTime::now_utc())
            .unwrap();
    }
    let (_sender, config) = watch::channel(Arc::new(config));
    ControlContext {
        config,
        sessions: db,
        deployer: None,
        manager: None,
    }
}

async fn start(dir: &Path, context: ControlContext) -> PathBuf {
    let path = dir.join("run").join("control.sock");
    let server = bind_control_socket(&path).await.unwrap();
    tokio::spawn(server.serve(context));
    path
}

fn command(line: &str) -> Command {
    let words: Vec<&str> = line.split_whitespace().collect();
    Command::parse(&words).unwrap()
}

#[tokio::test]
async fn show_vpn_sessiondb_summary_round_trips_through_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let context = context(&["alice", "bob"]);
    // alice has her tunnel up; bob has not connected yet (inactive).
    let setup = TlsTunnelSetup {
        cipher_suite: "TLS13_AES_256_GCM_SHA384".to_owned(),
        encapsulation: "TLSv1.3".to_owned(),
        tcp_src_port: 50530,
        tcp_dst_port: 443,
    };
    let _tunnel = context
        .sessions
        .attach(1, &setup, OffsetDateTime::now_utc())
        .unwrap();
    let path = start(dir.path(), context).await;
    let answer = send_command(&path, &command("show vpn-sessiondb summary"))
        .await
        .unwrap();
    assert!(answer.contains("VPN Session Summary"), "{answer}");
    let client_line = answer
        .lines()
        .find(|l| l.starts_with("AnyConnect Client"))
        .unwrap();
    assert_eq!(
        client_line,
        "AnyConnect Client            :      1 :          2 :           2 :        1"
    );
}

#[tokio::test]
async fn logoff_through_the_socket_ends_the_sessions_and_reports_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let context = context(&["alice", "alice", "bob"]);
    let db = context.sessions.clone();
    let path = start(dir.path(), context).await;
    let answer = send_command(&path, &command("vpn-sessiondb logoff name alice noconfirm"))
        .await
        .unwrap();
    assert_eq!(
        answer,
        "INFO: Number of sessions with name \"alice\" logged off : 2\n"
    );
    assert_eq!(db.sessions().len(), 1);
    let listing = send_command(&path, &command("show vpn-sessiondb anyconnect"))
        .await
        .unwrap();
    assert!(
        listing.contains("bob") && !listing.contains("alice"),
        "{listing}"
    );
}

#[tokio::test]
async fn logoff_with_no_sessions_says_there_are_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path(), context(&[])).await;
    let answer = send_command(&path, &command("vpn-sessiondb logoff all noconfirm"))
        .await
        .unwrap();
    assert_eq!(answer, "INFO: There are presently no active sessions\n");
}

#[tokio::test]
async fn show_running_config_section_comes_from_the_running_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path(), context(&[])).await;
    let answer = send_command(&path, &command("show running-config ip local pool"))
        .await
        .unwrap();
    assert!(
        answer.contains("ip local pool POOL4 10.77.0.10-10.77.0.20 mask 255.255.255.0"),
        "{answer}"
    );
}

#[tokio::test]
async fn socket_and_its_directory_are_private_to_root() {
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path(), context(&[])).await;
    let socket_mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!((socket_mode, dir_mode), (0o600, 0o700));
}

#[tokio::test]
async fn client_reports_a_clear_error_when_the_agent_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    let error = send_command(&path, &command("show vpn-sessiondb"))
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::NotRunning { .. }));
    assert!(error.to_string().contains("sensor-agent is not running"));
}

#[tokio::test]
async fn a_second_agent_cannot_take_over_a_live_socket_but_replaces_a_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    let first = bind_control_socket(&path).await.unwrap();
    assert!(matches!(
        bind_control_socket(&path).await,
        Err(ControlError::AlreadyRunning { .. })
    ));
    // A crashed agent leaves its socket file behind without a listener.
    let stale = std::os::unix::net::UnixListener::bind(dir.path().join("stale.sock")).unwrap();
    drop(stale);
    let replaced = bind_control_socket(&dir.path().join("stale.sock")).await;
    assert!(replaced.is_ok());
    drop(first);
    assert!(!path.exists(), "the socket file is removed on shutdown");
}

#[tokio::test]
async fn malformed_or_oversized_requests_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path(), context(&[])).await;
    for request in [
        b"{\"command\":\"reboot\"}\n".to_vec(),
        vec![b'x'; MAX_REQUEST_BYTES + 10],
    ] {
        let mut stream = UnixStream::connect(&path).await.unwrap();
        // The agent may answer before reading all of an oversized request.
        let _ = stream.write_all(&request).await;
        let _ = stream.shutdown().await;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with(ERROR_PREFIX), "{answer}");
    }
}

#[test]
fn the_logged_form_of_configure_manager_add_leaves_the_registration_key_out() {
    let request = LocalRequest::ConfigureManagerAdd {
        address: "192.0.2.1".into(),
        registration_key: "Secret-Reg-Key-9".into(),
        nat_id: Some("nat-1".into()),
    };
    let logged = format!("{request:?}");
    assert!(!logged.contains("Secret-Reg-Key-9"), "{logged}");
    assert!(
        logged.contains("192.0.2.1") && logged.contains("nat-1"),
        "{logged}"
    );
}
