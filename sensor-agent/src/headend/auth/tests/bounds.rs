//! Bounded work per source, explicit refusals and log lines that cannot be forged.

use std::net::SocketAddr;

use super::*;
use crate::testing::logs::Logs;

fn from(peer: &str, client: Option<&TestCert>) -> Connection {
    let mut conn = connection(client);
    conn.peer = peer.parse::<SocketAddr>().unwrap();
    conn
}

/// A wrong (or right) password for `username` on the AAA-only profile from `conn`.
fn attempt(world: &World, conn: &Connection, username: &str, password: &str) -> String {
    let (_, form) = answer(world, conn, &post("/RAVPN-AAA", init("RAVPN-AAA", false)));
    assert!(form.contains("aggauth-handle"), "{form}");
    answer(
        world,
        conn,
        &post("/", password_reply(&form, Some(username), password)),
    )
    .1
}

#[test]
fn wrong_passwords_from_one_address_are_throttled_there_and_the_user_logs_in_from_another() {
    let world = world(|_| {});
    let attacker = from("203.0.113.9:40000", None);
    let mut failed = 0;
    let mut throttled = 0;
    for _ in 0..12 {
        let body = attempt(&world, &attacker, "alice", "guess");
        if body.contains(LOGIN_FAILED) {
            failed += 1;
        } else {
            assert!(
                body.contains("Too many failed logins from your address. Try again in "),
                "{body}"
            );
            throttled += 1;
        }
    }
    assert_eq!(failed, 5, "five wrong attempts per username and address");
    assert_eq!(throttled, 7);
    // The right password from the flooded address waits too; it is not "Login failed".
    let body = attempt(&world, &attacker, "alice", PASSWORD);
    assert!(body.contains("Try again in"), "{body}");
    // Elsewhere, alice is not locked out.
    let body = attempt(&world, &from("192.0.2.7:50000", None), "alice", PASSWORD);
    assert!(body.contains("type=\"complete\""), "{body}");
}

#[test]
fn one_address_trying_many_usernames_is_throttled_by_its_source_score() {
    let world = world(|_| {});
    let attacker = from("[2001:db8:9:9::1]:40000", None);
    let mut answers = Vec::new();
    for i in 0..25 {
        // Another address of the same /64 each time: still one source.
        let conn = from(&format!("[2001:db8:9:9::{:x}]:40000", i + 1), None);
        answers.push(attempt(&world, &conn, &format!("user{i}"), "guess"));
    }
    let failed = answers.iter().filter(|a| a.contains(LOGIN_FAILED)).count();
    assert_eq!(failed, 20, "twenty wrong attempts per source");
    assert!(answers[24].contains("Try again in"), "{}", answers[24]);
    let _ = attacker;
    // Another /64 is not affected.
    let body = attempt(
        &world,
        &from("[2001:db8:9:8::1]:40000", None),
        "alice",
        PASSWORD,
    );
    assert!(body.contains("type=\"complete\""), "{body}");
}

#[test]
fn logins_waiting_for_a_password_are_capped_per_source() {
    let world = world(|_| {});
    let flood = from("203.0.113.9:40000", None);
    for _ in 0..MAX_PENDING_LOGINS_PER_SOURCE {
        let (_, form) = answer(
            &world,
            &flood,
            &post("/RAVPN-AAA", init("RAVPN-AAA", false)),
        );
        assert!(form.contains("aggauth-handle"), "{form}");
    }
    let (_, refused) = answer(
        &world,
        &flood,
        &post("/RAVPN-AAA", init("RAVPN-AAA", false)),
    );
    assert!(refused.contains(TOO_MANY_PENDING), "{refused}");
    assert_eq!(
        world.headend.pending_logins().len(),
        MAX_PENDING_LOGINS_PER_SOURCE
    );
    // Others still log in.
    let body = attempt(&world, &from("192.0.2.7:50000", None), "alice", PASSWORD);
    assert!(body.contains("type=\"complete\""), "{body}");
}

#[test]
fn mca_challenges_are_capped_per_source_and_an_answer_frees_its_place() {
    let world = world(|_| {});
    let flood = from("203.0.113.9:40000", Some(&world.machine));
    let mut first = None;
    for _ in 0..MAX_CHALLENGES_PER_SOURCE {
        let (_, body) = answer(&world, &flood, &post("/RAVPN-MCA", init("RAVPN-MCA", true)));
        assert!(body.contains("multiple-client-cert-request"), "{body}");
        first.get_or_insert(body);
    }
    let (_, refused) = answer(&world, &flood, &post("/RAVPN-MCA", init("RAVPN-MCA", true)));
    assert!(refused.contains(TOO_MANY_PENDING), "{refused}");
    let other = from("192.0.2.7:50000", Some(&world.machine));
    let (_, body) = answer(&world, &other, &post("/RAVPN-MCA", init("RAVPN-MCA", true)));
    assert!(body.contains("multiple-client-cert-request"), "{body}");
    // Answering one challenge (here wrongly) gives its place back.
    let challenge = first.unwrap();
    let reply = mca_reply(&challenge, &world.user, &world.other.key_pem);
    let (_, refused) = answer(&world, &flood, &post("/RAVPN-MCA", reply));
    assert!(
        !refused.contains("multiple-client-cert-request"),
        "{refused}"
    );
    let (_, body) = answer(&world, &flood, &post("/RAVPN-MCA", init("RAVPN-MCA", true)));
    assert!(body.contains("multiple-client-cert-request"), "{body}");
}

#[test]
fn a_full_device_says_it_reached_its_session_limit() {
    let world = world(|_| {});
    let settings = SessionDbSettings {
        device_capacity: 1,
        ..SessionDbSettings::default()
    };
    let sessions = SessionDb::new(
        PoolSet::from_device_config(&world.headend.config()).unwrap(),
        settings,
    );
    let (router, _tun) = Router::new(4, 4);
    let (_updates, config) = tokio::sync::watch::channel(world.headend.config());
    let headend = Headend::new(
        config,
        sessions,
        router,
        HeadendSettings {
            disconnected_timeout_secs: 1800,
        },
    )
    .unwrap();
    let world = World { headend, ..world };
    let conn = connection(None);
    let body = attempt(&world, &conn, "alice", PASSWORD);
    assert!(body.contains("type=\"complete\""), "{body}");
    let body = attempt(&world, &conn, "alice", PASSWORD);
    assert!(body.contains(SESSION_LIMIT_REACHED), "{body}");
    assert!(!body.contains(LOGIN_FAILED), "{body}");
}

#[test]
fn a_username_with_a_newline_cannot_forge_a_syslog_line() {
    let world = world(|_| {});
    let logs = Logs::default();
    let forged =
        "bob&#10;%FTD-6-113004: AAA user authentication Successful : server = LOCAL : user = admin";
    tracing::subscriber::with_default(logs.subscriber(LevelFilter::INFO), || {
        tracing::callsite::rebuild_interest_cache();
        let body = attempt(&world, &connection(None), forged, "guess");
        assert!(body.contains(LOGIN_FAILED), "{body}");
    });
    let messages = logs.messages();
    let rejected = messages
        .iter()
        .find(|m| m.contains("AAA user authentication Rejected"))
        .unwrap_or_else(|| panic!("{messages:?}"));
    assert!(
        rejected.contains("user = bob\\n%FTD-6-113004"),
        "{rejected}"
    );
    for message in &messages {
        assert!(!message.contains('\n'), "{message:?}");
    }
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_under_a_flood_of_parallel_wrong_passwords() {
    // 8 MiB per check: unbounded, 200 parallel checks would take 1.6 GiB.
    const M_COST_KIB: u32 = 8 * 1024;
    const FLOOD: usize = 200;
    let params = argon2::Params::new(M_COST_KIB, 1, 1, None).unwrap();
    let salt = SaltString::from_b64("c2Vuc29yLWFnZW50LXRlc3Q").unwrap();
    let hash = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(PASSWORD.as_bytes(), &salt)
        .unwrap()
        .to_string();
    let world = world(|config| {
        for user in &mut config.local_users {
            user.password_hash = hash.clone();
        }
    });
    // Each attempt from its own address, so the ban score lets every one be checked.
    let mut replies = Vec::new();
    for i in 0..FLOOD {
        let conn = Arc::new(from(
            &format!("10.9.{}.{}:40000", i / 200, i % 200 + 1),
            None,
        ));
        let (_, form) = answer(&world, &conn, &post("/RAVPN-AAA", init("RAVPN-AAA", false)));
        // Known and unknown usernames alike.
        let username = if i % 2 == 0 { "alice" } else { "nobody" };
        replies.push((
            conn,
            post("/", password_reply(&form, Some(username), "guess")),
        ));
    }
    let before = resident_kib();
    let mut tasks = tokio::task::JoinSet::new();
    for (conn, request) in replies {
        let headend = Arc::clone(&world.headend);
        tasks.spawn(async move { headend.post(&conn, request).await });
    }
    let mut failed = 0;
    while let Some(response) = tasks.join_next().await {
        let body = String::from_utf8(response.unwrap().body).unwrap();
        failed += usize::from(body.contains(LOGIN_FAILED));
    }
    assert_eq!(failed, FLOOD);
    let grown_mib = resident_kib().saturating_sub(before) / 1024;
    // Two buffers of 8 MiB plus slack for other tests running in this process.
    assert!(grown_mib < 160, "resident memory grew by {grown_mib} MiB");
}
