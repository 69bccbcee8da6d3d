//! DTLS (PSK-NEGOTIATE) with openconnect 9.01: established next to CSTP, carrying the
//! pings, falling back to CSTP when UDP is blocked, back after a reconnect, unmoved
//! by a flood of forged ClientHellos, and off for a group policy without DTLS.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use super::lab::*;

/// openconnect (MCA login) with DTLS allowed, for profile `group`, on device `tun`;
/// waits until the vpnc-script configured it.
fn connect_with_dtls(lab: &Lab, tun: &str, group: &str) -> RunningClient {
    let mut client = lab.spawn_tunnel(
        tun,
        |script| {
            lab.openconnect_without_group(
                Some(&lab.fixture.user),
                &["--usergroup", group, "-i", tun, "--script", script],
            )
        },
        "x\n",
    );
    client.wait_configured(lab, Duration::from_secs(30));
    client
}

fn output(client: &RunningClient) -> String {
    std::fs::read_to_string(&client.stdout).unwrap_or_default()
        + &std::fs::read_to_string(&client.stderr).unwrap_or_default()
}

/// Waits until openconnect has printed `text` `times` times.
fn wait_for_output(
    client: &mut RunningClient,
    lab: &Lab,
    text: &str,
    times: usize,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    while output(client).matches(text).count() < times {
        if let Some(status) = client.process.0.try_wait().unwrap() {
            panic!(
                "{}",
                client.report(lab, &format!("openconnect exited with {status}"))
            );
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            client.report(
                lab,
                &format!("openconnect never printed {text:?} {times} times")
            )
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn detail(lab: &Lab) -> String {
    lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"])
}

/// The text of the `name:` block (`SSL-Tunnel`, `DTLS-Tunnel`) of a detail output.
fn block<'d>(detail: &'d str, name: &str) -> Option<&'d str> {
    let start = detail.find(&format!("\n{name}:\n"))?;
    let rest = &detail[start + 1..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    Some(&rest[..end])
}

fn counter(block: &str, label: &str) -> u64 {
    let (_, after) = block
        .split_once(label)
        .unwrap_or_else(|| panic!("no {label} in {block}"));
    after
        .trim_start_matches([' ', ':'])
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// (Bytes Tx, Bytes Rx) of a tunnel block, 0 when there is none.
fn tunnel_bytes(lab: &Lab, name: &str) -> (u64, u64) {
    let detail = detail(lab);
    block(&detail, name).map_or((0, 0), |b| {
        (counter(b, "Bytes Tx     "), counter(b, "Bytes Rx     "))
    })
}

fn ping_ok(lab: &Lab, client: &RunningClient, tun: &str, count: u32) {
    let ping = lab.ping_through(tun, count);
    assert!(
        ping.status.success(),
        "{}",
        client.report(
            lab,
            &format!(
                "ping through the tunnel failed: {}",
                String::from_utf8_lossy(&ping.stdout)
            )
        )
    );
}

fn stop(lab: &Lab, mut client: RunningClient) {
    run(&["kill", "-INT", &client.process.0.id().to_string()]);
    let status = client.wait(lab, Duration::from_secs(10));
    assert!(
        status.success(),
        "{}",
        client.report(lab, &format!("openconnect exit {status}"))
    );
}

#[test]
fn openconnect_says_ssl_and_dtls_connected_and_pings_cross_the_dtls_tunnel() {
    check_prerequisites();
    let lab = Lab::start_with_dtls("d");
    let mut client = connect_with_dtls(&lab, "octest0", "RAVPN-MultiCert");
    wait_for_output(
        &mut client,
        &lab,
        "Configured as 192.168.77.10, with SSL connected and DTLS connected",
        1,
        Duration::from_secs(20),
    );
    let out = output(&client);
    assert!(out.contains("Established DTLS connection"), "{out}");
    // The MTU probes were echoed at full length: no fallback to 576.
    assert!(!out.contains("Detected MTU of 576"), "{out}");

    let before = tunnel_bytes(&lab, "DTLS-Tunnel");
    ping_ok(&lab, &client, "octest0", 3);
    let detail = detail(&lab);
    eprintln!("{detail}");
    assert!(
        detail.contains("Protocol     : AnyConnect-Parent SSL-Tunnel DTLS-Tunnel"),
        "{detail}"
    );
    let dtls = block(&detail, "DTLS-Tunnel").unwrap_or_else(|| panic!("{detail}"));
    assert!(dtls.contains("Encapsulation: DTLSv1.2"), "{dtls}");
    assert!(dtls.contains("Ciphersuite  : PSK-"), "{dtls}");
    assert!(dtls.contains("UDP Dst Port : 443"), "{dtls}");
    assert!(dtls.contains("Client Type  : DTLS VPN Client"), "{dtls}");
    assert!(dtls.contains("Assigned IP  : 192.168.77.10"), "{dtls}");
    let after = (
        counter(dtls, "Bytes Tx     "),
        counter(dtls, "Bytes Rx     "),
    );
    assert!(
        after.0 >= before.0 + 3 * 84 && after.1 >= before.1 + 3 * 84,
        "DTLS-Tunnel bytes (tx, rx) {before:?} then {after:?}:\n{detail}"
    );
    assert!(counter(dtls, "Pkts Rx      ") >= 3, "{dtls}");

    let summary = lab.operator(&["show", "vpn-sessiondb", "summary"]);
    let line = summary
        .lines()
        .find(|l| l.starts_with("DTLS-Tunnel"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(
        line.split(':').nth(1).map(str::trim),
        Some("1"),
        "{summary}"
    );
    stop(&lab, client);
}

/// Blocks (or lets through again) UDP in and out of the client's link to the sensor.
fn block_udp(lab: &Lab, blocked: bool) {
    let ns = lab.client.name();
    let dev = lab.client_device.as_str();
    if blocked {
        run(&[
            "ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "clsact",
        ]);
        for direction in ["egress", "ingress"] {
            // Redirected to the loopback device, where no socket has the address.
            run(&[
                "ip", "netns", "exec", ns, "tc", "filter", "add", "dev", dev, direction,
                "protocol", "ip", "u32", "match", "ip", "protocol", "17", "0xff", "action",
                "mirred", "egress", "redirect", "dev", "lo",
            ]);
        }
    } else {
        run(&[
            "ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "clsact",
        ]);
    }
}

#[test]
fn blocked_udp_moves_the_traffic_to_cstp_and_a_reconnect_brings_dtls_back() {
    check_prerequisites();
    let lab = Lab::start_with_dtls("u");
    let mut client = connect_with_dtls(&lab, "octest0", "RAVPN-MultiCert");
    wait_for_output(
        &mut client,
        &lab,
        "Established DTLS connection",
        1,
        Duration::from_secs(20),
    );
    ping_ok(&lab, &client, "octest0", 2);

    block_udp(&lab, true);
    // openconnect declares DTLS dead after two DPD intervals and sends over CSTP.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if lab.ping_through("octest0", 1).status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            client.report(&lab, "no ping got through while UDP was blocked")
        );
    }
    let ssl_before = tunnel_bytes(&lab, "SSL-Tunnel");
    ping_ok(&lab, &client, "octest0", 3);
    let ssl_after = tunnel_bytes(&lab, "SSL-Tunnel");
    assert!(
        ssl_after.0 >= ssl_before.0 + 3 * 84 && ssl_after.1 >= ssl_before.1 + 3 * 84,
        "SSL-Tunnel bytes (tx, rx) {ssl_before:?} then {ssl_after:?}:\n{}",
        detail(&lab)
    );

    // UDP back, SIGUSR2: openconnect reconnects with the same cookie, a new TLS
    // connection and so a new PSK, and DTLS is established again.
    block_udp(&lab, false);
    run(&["kill", "-USR2", &client.process.0.id().to_string()]);
    wait_for_output(
        &mut client,
        &lab,
        "Established DTLS connection",
        2,
        Duration::from_secs(90),
    );
    // Let the client finish its MTU probing before measuring.
    std::thread::sleep(Duration::from_secs(1));
    let dtls_before = tunnel_bytes(&lab, "DTLS-Tunnel");
    ping_ok(&lab, &client, "octest0", 3);
    let detail = detail(&lab);
    let dtls = block(&detail, "DTLS-Tunnel").unwrap_or_else(|| panic!("{detail}"));
    let dtls_after = (
        counter(dtls, "Bytes Tx     "),
        counter(dtls, "Bytes Rx     "),
    );
    assert!(
        dtls_after.0 >= dtls_before.0 + 3 * 84 && dtls_after.1 >= dtls_before.1 + 3 * 84,
        "DTLS-Tunnel bytes (tx, rx) {dtls_before:?} then {dtls_after:?}:\n{detail}"
    );
    // One session throughout, with its one address.
    assert_eq!(detail.matches("Username     :").count(), 1, "{detail}");
    assert!(detail.contains("Assigned IP  : 192.168.77.10"), "{detail}");
    stop(&lab, client);
}

/// Sends `count` ClientHellos with random session ids (and as many random datagrams)
/// to the sensor's DTLS port from the client's namespace, from 16 source ports.
fn flood_client_hellos(lab: &Lab, count: usize) {
    let path = format!("/run/netns/{}", lab.client.name());
    std::thread::spawn(move || {
        let netns = std::fs::File::open(path).unwrap();
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let sockets: Vec<UdpSocket> = (0..16)
            .map(|_| UdpSocket::bind((CLIENT_ADDRESS, 0)).unwrap())
            .collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..count {
            let mut id = [0u8; 32];
            id.iter_mut().for_each(|b| *b = random() as u8);
            let socket = &sockets[i % sockets.len()];
            let target = (AGENT_ADDRESS, 443);
            let _ = socket.send_to(&client_hello(&id), target);
            let garbage: Vec<u8> = (0..(random() % 300) as usize)
                .map(|_| random() as u8)
                .collect();
            let _ = socket.send_to(&garbage, target);
        }
    })
    .join()
    .unwrap();
}

/// A DTLS 1.2 ClientHello as openconnect sends it, with session id `id`.
fn client_hello(id: &[u8; 32]) -> Vec<u8> {
    let mut body = vec![0xfe, 0xfd];
    body.extend_from_slice(&[0x42; 32]);
    body.push(32);
    body.extend_from_slice(id);
    body.push(0);
    body.extend_from_slice(&[0, 4, 0x00, 0xa9, 0x00, 0xa8, 1, 0]);
    let len = (body.len() as u32).to_be_bytes();
    let mut record = vec![22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
    record.extend_from_slice(&((body.len() + 12) as u16).to_be_bytes());
    record.push(1);
    record.extend_from_slice(&len[1..]);
    record.extend_from_slice(&[0, 0, 0, 0, 0]);
    record.extend_from_slice(&len[1..]);
    record.extend_from_slice(&body);
    record
}

fn dtls_tunnel_id(lab: &Lab) -> String {
    let detail = detail(lab);
    let dtls = block(&detail, "DTLS-Tunnel").unwrap_or_else(|| panic!("no DTLS tunnel:\n{detail}"));
    let (_, after) = dtls.split_once("Tunnel ID    : ").unwrap();
    after.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn a_flood_of_random_client_hellos_does_not_disturb_a_live_dtls_session() {
    check_prerequisites();
    let lab = Lab::start_with_dtls("f");
    let mut client = connect_with_dtls(&lab, "octest0", "RAVPN-MultiCert");
    wait_for_output(
        &mut client,
        &lab,
        "Established DTLS connection",
        1,
        Duration::from_secs(20),
    );
    ping_ok(&lab, &client, "octest0", 1);
    let tunnel = dtls_tunnel_id(&lab);

    flood_client_hellos(&lab, 5000);

    let before = tunnel_bytes(&lab, "DTLS-Tunnel");
    ping_ok(&lab, &client, "octest0", 3);
    let after = tunnel_bytes(&lab, "DTLS-Tunnel");
    assert!(
        after.0 >= before.0 + 3 * 84 && after.1 >= before.1 + 3 * 84,
        "DTLS-Tunnel bytes (tx, rx) {before:?} then {after:?}"
    );
    assert_eq!(dtls_tunnel_id(&lab), tunnel);
    let out = output(&client);
    assert_eq!(
        out.matches("Established DTLS connection").count(),
        1,
        "{out}"
    );
    assert!(!lab.agent_log().contains("panicked"), "{}", lab.agent_log());
    stop(&lab, client);
}

#[test]
fn a_group_policy_with_dtls_off_keeps_its_sessions_on_cstp() {
    check_prerequisites();
    let lab = Lab::start_with_dtls("n");
    let mut client = connect_with_dtls(&lab, "octest0", NO_DTLS_GROUP);
    wait_for_output(
        &mut client,
        &lab,
        "with SSL connected and DTLS disabled",
        1,
        Duration::from_secs(20),
    );
    let before = tunnel_bytes(&lab, "SSL-Tunnel");
    ping_ok(&lab, &client, "octest0", 3);
    let detail = detail(&lab);
    assert!(!detail.contains("DTLS-Tunnel:"), "{detail}");
    assert!(
        detail.contains("Protocol     : AnyConnect-Parent SSL-Tunnel\n"),
        "{detail}"
    );
    let after = tunnel_bytes(&lab, "SSL-Tunnel");
    assert!(after.1 >= before.1 + 3 * 84, "{before:?} then {after:?}");
    stop(&lab, client);
}
