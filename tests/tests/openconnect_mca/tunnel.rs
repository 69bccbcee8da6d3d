//! Tunnels: traffic, logoff, reconnect, the cookie after logoff, and many clients at once.

use std::process::Command;
use std::time::{Duration, Instant};

use super::lab::*;

#[test]
fn openconnect_tunnel_carries_pings_and_the_session_shows_multiple_certificate_auth() {
    let lab = Lab::start("t");
    let mut openconnect = lab.connect_tunnel();
    let env = std::fs::read_to_string(&openconnect.env).unwrap();
    assert!(env.contains("INTERNAL_IP4_ADDRESS=192.168.77.10"), "{env}");
    assert!(env.contains("INTERNAL_IP4_MTU=1399"), "{env}");
    // The pool's network and the network behind the sensor are split-include routes.
    let value = |name: String| {
        env.lines()
            .find_map(|l| l.strip_prefix(&name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in:\n{env}"))
    };
    let includes: std::collections::BTreeSet<String> =
        (0..value("CISCO_SPLIT_INC".into()).parse().unwrap())
            .map(|i: usize| {
                format!(
                    "{}/{}",
                    value(format!("CISCO_SPLIT_INC_{i}_ADDR")),
                    value(format!("CISCO_SPLIT_INC_{i}_MASKLEN"))
                )
            })
            .collect();
    assert_eq!(
        includes,
        [POOL_NETWORK, INSIDE_NETWORK].map(String::from).into(),
        "{env}"
    );

    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.client.name(),
            "ping",
            "-c",
            "3",
            "-W",
            "2",
            "192.168.77.1",
        ])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        openconnect.report(
            &lab,
            &format!(
                "ping through the tunnel failed: {}",
                String::from_utf8_lossy(&ping.stdout)
            )
        )
    );

    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Username     : client.example.com"),
        "{detail}"
    );
    assert!(
        detail.contains("Auth Mode    : Multiple-certificate"),
        "{detail}"
    );
    assert!(detail.contains("192.168.77.10"), "{detail}");
    eprintln!("{detail}");
    // Three echo requests in, three replies out, counted on the SSL tunnel.
    let count = |label: &str| -> u64 {
        let (_, after) = detail.split_once(label).unwrap();
        after.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert!(count("Pkts Tx      :") >= 3, "{detail}");
    assert!(count("Bytes Rx     :") >= 3 * 84, "{detail}");

    // A host behind the sensor, reached through the tunnel and the sensor's forwarding.
    let rx_before = lab.inside_rx_packets();
    let replies_before = lab.inside_echo_replies();
    let ssl_before = ssl_tunnel_bytes(&detail);
    let ping = Command::new("ip")
        .args(["netns", "exec", lab.client.name(), "ping", "-n"])
        .args(["-c", "3", "-W", "2", INSIDE_HOST])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        openconnect.report(
            &lab,
            &format!(
                "ping to {INSIDE_HOST} behind the sensor failed: {}",
                String::from_utf8_lossy(&ping.stdout)
            )
        )
    );
    // The inside host received the echo requests and answered each of them.
    let rx_after = lab.inside_rx_packets();
    assert!(
        rx_after >= rx_before + 3,
        "inside host received {rx_before} then {rx_after} packets"
    );
    let replies_after = lab.inside_echo_replies();
    assert!(
        replies_after >= replies_before + 3,
        "inside host answered {replies_before} then {replies_after} echo requests"
    );
    // The requests and replies crossed the SSL tunnel: the headend drops any packet whose
    // source is not the session's assigned address, so these came from 192.168.77.10.
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    let ssl_after = ssl_tunnel_bytes(&detail);
    assert!(
        ssl_after.0 >= ssl_before.0 + 3 * 84 && ssl_after.1 >= ssl_before.1 + 3 * 84,
        "SSL-Tunnel bytes (tx, rx) {ssl_before:?} then {ssl_after:?}:\n{detail}"
    );
    // The inside host reaches the client's assigned address back through the tunnel.
    let back = lab.ping_from_inside("192.168.77.10", 2);
    assert!(
        back.status.success(),
        "{}",
        openconnect.report(
            &lab,
            &format!(
                "ping from the inside host to 192.168.77.10 failed: {}",
                String::from_utf8_lossy(&back.stdout)
            )
        )
    );

    // SIGINT: openconnect sends DISCONNECT, the agent logs the session out.
    run(&["kill", "-INT", &openconnect.process.0.id().to_string()]);
    let status = openconnect.wait(&lab, Duration::from_secs(10));
    assert!(
        status.success(),
        "{}",
        openconnect.report(&lab, &format!("openconnect exit {status}"))
    );
    let out = std::fs::read_to_string(&openconnect.stdout).unwrap();
    eprintln!("{out}");
    assert!(
        out.contains("Got CONNECT response: HTTP/1.1 200 CONNECTED"),
        "{out}"
    );
    assert!(
        out.contains("Configured as 192.168.77.10, with SSL connected and DTLS disabled"),
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let summary = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
        if !summary.contains("client.example.com") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "session still listed after logout: {summary}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        lab.agent_log().contains("Reason: User Requested"),
        "{}",
        lab.agent_log()
    );
}

/// `(Bytes Tx, Bytes Rx)` of the SSL-Tunnel block of `show vpn-sessiondb detail anyconnect`.
fn ssl_tunnel_bytes(detail: &str) -> (u64, u64) {
    let (_, block) = detail
        .split_once("\nSSL-Tunnel:\n")
        .unwrap_or_else(|| panic!("no SSL-Tunnel block in:\n{detail}"));
    let count = |label: &str| -> u64 {
        let (_, after) = block.split_once(label).unwrap();
        after.split_whitespace().next().unwrap().parse().unwrap()
    };
    (count("Bytes Tx     :"), count("Bytes Rx     :"))
}

#[test]
fn administrator_logoff_disconnects_openconnect_with_the_reason() {
    let lab = Lab::start("k");
    let mut openconnect = lab.connect_tunnel();
    let logoff = lab.operator(&["vpn-sessiondb", "logoff", "all", "noconfirm"]);
    assert!(logoff.contains("1"), "{logoff}");
    let status = openconnect.wait(&lab, Duration::from_secs(10));
    let report = openconnect.report(&lab, &format!("openconnect exit {status}"));
    assert_eq!(status.code(), Some(1), "{report}");
    assert!(
        report.contains("Received server disconnect: b0 'Administrator reset'"),
        "{report}"
    );
    assert!(lab.agent_log().contains("Reason: Admin Reset"), "{report}");
}

#[test]
fn openconnect_reconnects_with_its_cookie_and_keeps_its_address() {
    let lab = Lab::start("u");
    let mut openconnect = lab.connect_tunnel();
    let events = openconnect.events.clone();
    run(&["kill", "-USR2", &openconnect.process.0.id().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logged = std::fs::read_to_string(&events).unwrap_or_default();
        if logged.lines().any(|l| l == "reconnect") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            openconnect.report(&lab, "no reconnect")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.client.name(),
            "ping",
            "-c",
            "2",
            "-W",
            "2",
            "192.168.77.1",
        ])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        openconnect.report(&lab, "ping after the reconnect failed")
    );
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(detail.contains("Assigned IP  : 192.168.77.10"), "{detail}");
    // The reconnect is a new SSL tunnel of the same session.
    assert!(detail.contains("Tunnel ID    : 1.3"), "{detail}");
    run(&["kill", "-INT", &openconnect.process.0.id().to_string()]);
    let status = openconnect.wait(&lab, Duration::from_secs(10));
    assert!(status.success(), "{}", openconnect.report(&lab, "exit"));
}

#[test]
fn after_an_administrator_logoff_the_sessions_cookie_is_rejected() {
    let lab = Lab::start("c");
    let (cookie, url) = lab.authenticate();
    assert_eq!(url, format!("https://localhost:{PORT}/"));
    let mut tunnel = lab.connect_with_cookie("octest0", &cookie, &url);
    tunnel.wait_configured(&lab, Duration::from_secs(30));
    let ping = lab.ping_through("octest0", 2);
    assert!(
        ping.status.success(),
        "{}",
        tunnel.report(&lab, "ping failed")
    );

    let logoff = lab.operator(&[
        "vpn-sessiondb",
        "logoff",
        "name",
        "client.example.com",
        "noconfirm",
    ]);
    assert!(logoff.contains("logged off : 1"), "{logoff}");
    let status = tunnel.wait(&lab, Duration::from_secs(10));
    let report = tunnel.report(&lab, &format!("openconnect exit {status}"));
    assert_eq!(status.code(), Some(1), "{report}");
    assert!(
        report.contains("Received server disconnect: b0 'Administrator reset'"),
        "{report}"
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    assert!(!summary.contains("client.example.com"), "{summary}");

    // The same cookie again: the headend no longer knows it.
    let mut again = lab.connect_with_cookie("octest1", &cookie, &url);
    let status = again.wait(&lab, Duration::from_secs(20));
    let report = again.report(&lab, &format!("openconnect exit {status}"));
    eprintln!("{report}");
    assert_eq!(status.code(), Some(2), "{report}");
    assert!(report.contains("Cookie was rejected by server"), "{report}");
    assert!(report.contains("401 Unauthorized"), "{report}");
    let log = lab.agent_log();
    assert!(log.contains("Reason: Admin Reset"), "{log}");
    assert!(
        log.contains("CONNECT refused") && log.contains("no session has this cookie"),
        "{log}"
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    assert!(!summary.contains("client.example.com"), "{summary}");
}

/// How many openconnect clients [`twenty_openconnect_clients_get_distinct_addresses_and_each_passes_traffic`] runs.
const CLIENTS: usize = 20;

#[test]
fn twenty_openconnect_clients_get_distinct_addresses_and_each_passes_traffic() {
    let lab = Lab::start("n");
    // Twenty tunnels in one namespace: replies arrive on a device that is not the one
    // the split route names, so strict reverse-path filtering would drop them.
    run(&[
        "ip",
        "netns",
        "exec",
        lab.client.name(),
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
    ]);
    let tuns: Vec<String> = (0..CLIENTS).map(|i| format!("ocm{i}")).collect();
    // Dropping `clients` kills every openconnect, whatever happens below.
    let mut clients: Vec<RunningClient> = tuns
        .iter()
        .map(|tun| {
            lab.spawn_tunnel(
                tun,
                |script| {
                    lab.openconnect(
                        Some(&lab.fixture.user),
                        &["-i", tun, "--script", script, "--no-dtls"],
                    )
                },
                "x\n",
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    for client in &mut clients {
        let left = deadline.saturating_duration_since(Instant::now());
        client.wait_configured(&lab, left);
    }

    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    let assigned: std::collections::BTreeSet<&str> = summary
        .lines()
        .filter_map(|l| l.strip_prefix("Assigned IP  : "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert_eq!(assigned.len(), CLIENTS, "{summary}");
    assert!(
        assigned.iter().all(|ip| ip.starts_with("192.168.77.")),
        "{summary}"
    );

    for (tun, client) in tuns.iter().zip(&clients) {
        let env = std::fs::read_to_string(&client.env).unwrap();
        let address = env
            .lines()
            .find_map(|l| l.strip_prefix("INTERNAL_IP4_ADDRESS="))
            .unwrap();
        assert!(
            assigned.contains(address),
            "{tun}: {address} not in\n{summary}"
        );
        let ping = lab.ping_through(tun, 1);
        assert!(
            ping.status.success(),
            "{}",
            client.report(
                &lab,
                &format!(
                    "ping through {tun} ({address}) failed: {}",
                    String::from_utf8_lossy(&ping.stdout)
                )
            )
        );
    }
    // Each session, not just one, counted its echo request.
    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    let received: Vec<u64> = summary
        .lines()
        .filter_map(|l| l.split_once("Bytes Rx     : "))
        .map(|(_, n)| n.trim().parse().unwrap())
        .collect();
    assert_eq!(received.len(), CLIENTS, "{summary}");
    assert!(received.iter().all(|&bytes| bytes >= 84), "{summary}");
}

/// The lab's configuration with `version` and without the connection profile `removed`.
fn redeployed_config(lab: &Lab, version: u64, removed: &str) -> std::path::PathBuf {
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&lab.fixture.config).unwrap()).unwrap();
    config["version"] = serde_json::json!(version);
    config["connection_profiles"]
        .as_array_mut()
        .unwrap()
        .retain(|profile| profile["name"] != removed);
    let path = lab
        .fixture
        .dir
        .path()
        .join(format!("device-{version}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

#[test]
fn a_redeploy_keeps_a_connected_client_unless_its_profile_is_removed() {
    let lab = Lab::start("v");
    let mut openconnect = lab.connect_tunnel();
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Tunnel Group : RAVPN-MultiCert\n")
            || detail.contains("Tunnel Group : RAVPN-MultiCert "),
        "{detail}"
    );

    // Another profile goes away: the session and the tunnel stay.
    let other = redeployed_config(&lab, 8, "RAVPN-EntireDN");
    let applied = lab.operator(&["configure", "apply", other.to_str().unwrap()]);
    assert!(applied.contains("0 session(s) ended"), "{applied}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        openconnect.process.0.try_wait().unwrap().is_none(),
        "{}",
        openconnect.report(&lab, "openconnect exited after an unrelated redeploy")
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    assert!(summary.contains("client.example.com"), "{summary}");

    // Its own profile goes away: the agent resets the session and openconnect exits.
    let own = redeployed_config(&lab, 9, "RAVPN-MultiCert");
    let applied = lab.operator(&["configure", "apply", own.to_str().unwrap()]);
    assert!(applied.contains("1 session(s) ended"), "{applied}");
    let status = openconnect.wait(&lab, Duration::from_secs(10));
    let report = openconnect.report(&lab, &format!("openconnect exit {status}"));
    assert_eq!(status.code(), Some(1), "{report}");
    assert!(
        report.contains("Received server disconnect: b0 'Administrator reset'"),
        "{report}"
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    assert!(!summary.contains("client.example.com"), "{summary}");
}
