//! The markdown written from the measurements: tables with ours, ocserv and the ratio,
//! the targets of issue 8, and the exact commands.

use std::fmt::Write as _;

use crate::Plan;
use crate::lab::{CLIENT_ADDRESS, INSIDE_HOST, POOL_NETWORK, SERVER_ADDRESS};
use crate::measure::{HeldSessions, Latencies, Logins, Throughput, Transport, iperf_args};
use crate::servers::Kind;

/// What one server got.
pub(crate) struct ServerResults {
    pub(crate) kind: Kind,
    pub(crate) command: String,
    /// (what, command line)
    pub(crate) commands: Vec<(String, String)>,
    /// Per transport: tunnel MTU, whether DTLS was connected, [client→inside, inside→client].
    pub(crate) throughput: Vec<(Transport, String, bool, Vec<Throughput>)>,
    pub(crate) connect: Vec<(Transport, Latencies)>,
    pub(crate) sequential_logins: Logins,
    pub(crate) parallel_logins: Logins,
    pub(crate) held: HeldSessions,
    /// Why its run stopped early.
    pub(crate) error: Option<String>,
}

impl ServerResults {
    pub(crate) fn new(kind: Kind) -> Self {
        Self {
            kind,
            command: String::new(),
            commands: Vec::new(),
            throughput: Vec::new(),
            connect: Vec::new(),
            sequential_logins: Logins::default(),
            parallel_logins: Logins::default(),
            held: HeldSessions::default(),
            error: None,
        }
    }

    fn throughput(&self, transport: Transport, reverse: bool) -> Option<&Throughput> {
        self.throughput
            .iter()
            .find(|(t, ..)| *t == transport)
            .and_then(|(_, _, _, runs)| runs.get(usize::from(reverse)))
    }

    fn connect(&self, transport: Transport) -> Option<&Latencies> {
        self.connect
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, l)| l)
    }
}

pub(crate) struct Report {
    pub(crate) plan: Plan,
    pub(crate) quick: bool,
    /// Bare veth: [client→inside, inside→client].
    pub(crate) bare: Vec<Throughput>,
    pub(crate) servers: Vec<ServerResults>,
}

fn number(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "–".to_owned(),
    }
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() => format!("{:.2}×", a / b),
        _ => "–".to_owned(),
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

impl Report {
    pub(crate) fn new(plan: Plan, quick: bool) -> Self {
        Self {
            plan,
            quick,
            bare: Vec::new(),
            servers: Vec::new(),
        }
    }

    fn server(&self, kind: Kind) -> Option<&ServerResults> {
        self.servers.iter().find(|s| s.kind == kind)
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) -> std::fmt::Result {
        let ours = self.server(Kind::Ours);
        let theirs = self.server(Kind::Ocserv);
        let p = &self.plan;
        writeln!(out, "## Network benchmarks: sensor-agent vs ocserv\n")?;
        writeln!(
            out,
            "Run: {}. iperf3 {} s per direction; logins {} sequential and {} with {} in parallel; \
             {} connects per transport; {} held sessions.\n",
            if self.quick {
                "`--quick` (smoke run)"
            } else {
                "full"
            },
            p.iperf_seconds,
            p.sequential_logins,
            p.parallel_logins,
            p.parallelism,
            p.connects,
            p.held_sessions
        )?;
        writeln!(
            out,
            "Topology (fresh for each server): client namespace {CLIENT_ADDRESS} ─veth─ \
             {SERVER_ADDRESS} server namespace (the VPN server, forwarding) ─veth─ inside \
             namespace {INSIDE_HOST} (`iperf3 -s`). Pool {POOL_NETWORK}. Same openconnect \
             client for both. Ours: MCA logins (machine certificate ECDSA P-256 in TLS, user \
             certificate RSA-2048 signed in the aggregate-auth exchange). ocserv: certificate \
             login (the same machine certificate in TLS, username from its CN).\n"
        )?;

        for server in &self.servers {
            if let Some(error) = &server.error {
                writeln!(
                    out,
                    "**The {} run stopped early** (figures after the failure are missing):\n\n```\n{}\n```\n",
                    server.kind.label(),
                    error.lines().take(20).collect::<Vec<_>>().join("\n")
                )?;
            }
        }
        writeln!(out, "### 1. Tunnel TCP throughput (iperf3), Gbit/s\n")?;
        writeln!(
            out,
            "Server CPU = CPU time of the server's process tree (utime+stime+cutime+cstime from \
             /proc/PID/stat; ocserv: main, sec-mod and the per-client workers) over the run's wall \
             time, in % of one core; \"CPU %/Gbit/s\" = that divided by the rate.\n"
        )?;
        writeln!(
            out,
            "| path | direction | bare veth | sensor-agent | ocserv | ours/ocserv | ours CPU % | ours CPU %/Gbit/s | ocserv CPU % | ocserv CPU %/Gbit/s |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
        for transport in [Transport::Tls, Transport::Dtls] {
            for reverse in [false, true] {
                let a = ours.and_then(|s| s.throughput(transport, reverse));
                let b = theirs.and_then(|s| s.throughput(transport, reverse));
                let bare = self.bare.get(usize::from(reverse));
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    transport.label(),
                    if reverse {
                        "inside → client (`-R`)"
                    } else {
                        "client → inside"
                    },
                    number(bare.map(|t| t.gbit_per_s), 2),
                    number(a.map(|t| t.gbit_per_s), 2),
                    number(b.map(|t| t.gbit_per_s), 2),
                    ratio(a.map(|t| t.gbit_per_s), b.map(|t| t.gbit_per_s)),
                    number(a.and_then(|t| t.server_cpu_percent), 0),
                    number(a.and_then(Throughput::cpu_percent_per_gbit), 1),
                    number(b.and_then(|t| t.server_cpu_percent), 0),
                    number(b.and_then(Throughput::cpu_percent_per_gbit), 1),
                )?;
            }
        }
        writeln!(out)?;
        for server in [ours, theirs].into_iter().flatten() {
            for (transport, mtu, dtls, runs) in &server.throughput {
                let per_run = |value: fn(&Throughput) -> String| {
                    runs.iter().map(value).collect::<Vec<_>>().join(" / ")
                };
                writeln!(
                    out,
                    "- {} over {}: tunnel MTU {mtu}, DTLS {}; client openconnect CPU % {}; \
                     TCP retransmits {} (client → inside / inside → client).",
                    server.kind.label(),
                    transport.label(),
                    if *dtls { "connected" } else { "not connected" },
                    per_run(|r| number(r.client_cpu_percent, 0)),
                    per_run(|r| r.retransmits.to_string()),
                )?;
            }
        }
        writeln!(out)?;

        writeln!(out, "### 2. Logins (`openconnect --authenticate`)\n")?;
        writeln!(
            out,
            "Latency = wall time of one `openconnect --authenticate` process (client start-up \
             and crypto included, the same for both). Server CPU per login = CPU time of the \
             server's process tree over the whole series divided by the successful logins. Client \
             CPU per login = CPU time of the finished openconnect processes (cutime + cstime of \
             bench-lab) divided by the attempts: what the clients spend, on the same CPUs.\n"
        )?;
        writeln!(
            out,
            "| series | sensor-agent logins/s | ocserv logins/s | ours/ocserv | ours p50 / p99 ms | ocserv p50 / p99 ms | ours CPU ms/login | ocserv CPU ms/login | client CPU ms/login ours / ocserv | failures ours / ocserv |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
        let login_row = |label: &str, pick: fn(&ServerResults) -> &Logins| {
            let a = ours.map(pick);
            let b = theirs.map(pick);
            format!(
                "| {label} | {} | {} | {} | {} / {} | {} / {} | {} | {} | {} / {} | {} / {} |",
                number(a.map(|l| l.per_second), 1),
                number(b.map(|l| l.per_second), 1),
                ratio(a.map(|l| l.per_second), b.map(|l| l.per_second)),
                number(a.and_then(|l| l.latencies.quantile(0.5)), 0),
                number(a.and_then(|l| l.latencies.quantile(0.99)), 0),
                number(b.and_then(|l| l.latencies.quantile(0.5)), 0),
                number(b.and_then(|l| l.latencies.quantile(0.99)), 0),
                number(a.map(|l| l.server_cpu_ms_per_login), 2),
                number(b.map(|l| l.server_cpu_ms_per_login), 2),
                number(a.map(|l| l.client_cpu_ms_per_login), 1),
                number(b.map(|l| l.client_cpu_ms_per_login), 1),
                a.map_or(0, |l| l.latencies.failures),
                b.map_or(0, |l| l.latencies.failures),
            )
        };
        writeln!(
            out,
            "{}",
            login_row(&format!("{} sequential", p.sequential_logins), |s| &s
                .sequential_logins)
        )?;
        writeln!(
            out,
            "{}",
            login_row(
                &format!("{} with {} in parallel", p.parallel_logins, p.parallelism),
                |s| &s.parallel_logins
            )
        )?;
        writeln!(out)?;
        self.write_failures(out, "login", |s| {
            [&s.sequential_logins, &s.parallel_logins]
                .into_iter()
                .find_map(|l| l.latencies.first_failure.clone())
        })?;

        writeln!(out, "### 3. Connect-to-tunnel-up latency, ms\n")?;
        writeln!(
            out,
            "From starting openconnect (full tunnel on a TUN device, vpnc-script configuring it) \
             until the first ping through the tunnel to the inside host is answered \
             (`ping -c 1 -w 5 -i 0.01 -I bt1 {INSIDE_HOST}`); {} times in a row, each logged \
             out (SIGINT) before the next.\n",
            p.connects
        )?;
        writeln!(
            out,
            "| transport | sensor-agent p50 / p99 | ocserv p50 / p99 | ours/ocserv (p50) | failures ours / ocserv |"
        )?;
        writeln!(out, "|---|---|---|---|---|")?;
        for transport in [Transport::Tls, Transport::Dtls] {
            let a = ours.and_then(|s| s.connect(transport));
            let b = theirs.and_then(|s| s.connect(transport));
            writeln!(
                out,
                "| {} | {} / {} | {} / {} | {} | {} / {} |",
                transport.label(),
                number(a.and_then(|l| l.quantile(0.5)), 0),
                number(a.and_then(|l| l.quantile(0.99)), 0),
                number(b.and_then(|l| l.quantile(0.5)), 0),
                number(b.and_then(|l| l.quantile(0.99)), 0),
                ratio(
                    a.and_then(|l| l.quantile(0.5)),
                    b.and_then(|l| l.quantile(0.5))
                ),
                a.map_or(0, |l| l.failures),
                b.map_or(0, |l| l.failures),
            )?;
        }
        writeln!(out)?;
        self.write_failures(out, "connect", |s| {
            s.connect.iter().find_map(|(_, l)| l.first_failure.clone())
        })?;

        writeln!(out, "### 4. Held idle sessions, server memory\n")?;
        writeln!(
            out,
            "{} openconnect clients with `--script-tun` (a real tunnel, DTLS on, no TUN device \
             on the client side), at most 16 connecting at a time; 5 s after the last came up, the \
             server's process tree is sampled (sum of `Pss`/`Rss` from /proc/PID/smaps_rollup; \
             ocserv: main, sec-mod and one worker per client) and compared with the sample \
             before the first client.\n",
            p.held_sessions
        )?;
        writeln!(
            out,
            "| server | sessions up | set-up time s | PSS before → after MiB | PSS KiB/session | RSS KiB/session | processes |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|")?;
        for server in [ours, theirs].into_iter().flatten() {
            let h = &server.held;
            writeln!(
                out,
                "| {} | {} / {} | {:.1} | {:.1} → {:.1} | {} | {} | {} → {} |",
                server.kind.label(),
                h.up,
                h.wanted,
                h.setup_seconds,
                h.before.pss_kib as f64 / 1024.0,
                h.after.pss_kib as f64 / 1024.0,
                number(h.pss_kib_per_session(), 1),
                number(h.rss_kib_per_session(), 1),
                h.before.processes,
                h.after.processes,
            )?;
        }
        writeln!(
            out,
            "\nours/ocserv PSS per session: {}.\n",
            ratio(
                ours.and_then(|s| s.held.pss_kib_per_session()),
                theirs.and_then(|s| s.held.pss_kib_per_session())
            )
        )?;
        self.write_failures(out, "held-session", |s| s.held.failure.clone())?;

        self.write_targets(out, ours, theirs)?;
        self.write_commands(out)?;
        Ok(())
    }

    fn write_failures(
        &self,
        out: &mut String,
        what: &str,
        first: impl Fn(&ServerResults) -> Option<String>,
    ) -> std::fmt::Result {
        for server in &self.servers {
            if let Some(failure) = first(server) {
                let shown: String = failure.lines().take(8).collect::<Vec<_>>().join("\n");
                writeln!(
                    out,
                    "First {what} failure with {}:\n\n```\n{shown}\n```\n",
                    server.kind.label()
                )?;
            }
        }
        Ok(())
    }

    fn write_targets(
        &self,
        out: &mut String,
        ours: Option<&ServerResults>,
        theirs: Option<&ServerResults>,
    ) -> std::fmt::Result {
        writeln!(out, "### Targets (issue 8)\n")?;
        writeln!(out, "| target | measured | verdict |")?;
        writeln!(out, "|---|---|---|")?;
        for transport in [Transport::Tls, Transport::Dtls] {
            for reverse in [false, true] {
                let a = ours.and_then(|s| s.throughput(transport, reverse));
                let b = theirs.and_then(|s| s.throughput(transport, reverse));
                let direction = if reverse {
                    "inside → client"
                } else {
                    "client → inside"
                };
                let speed = match (a, b) {
                    (Some(a), Some(b)) if b.gbit_per_s > 0.0 => Some(a.gbit_per_s / b.gbit_per_s),
                    _ => None,
                };
                writeln!(
                    out,
                    "| throughput ≥ 2× ocserv ({}, {direction}) | {} | {} |",
                    transport.label(),
                    number(speed, 2) + "×",
                    verdict(speed.map(|s| s >= 2.0))
                )?;
                let cpu = a.and_then(Throughput::cpu_percent_per_gbit);
                writeln!(
                    out,
                    "| ≤ 25 % server CPU per Gbit/s ({}, {direction}) | {} % | {} |",
                    transport.label(),
                    number(cpu, 1),
                    verdict(cpu.map(|c| c <= 25.0))
                )?;
            }
        }
        let logins = match (ours, theirs) {
            (Some(a), Some(b)) if b.parallel_logins.per_second > 0.0 => {
                Some(a.parallel_logins.per_second / b.parallel_logins.per_second)
            }
            _ => None,
        };
        writeln!(
            out,
            "| MCA logins ≥ 2× ocserv's certificate logins in parallel | {}× | {} |",
            number(logins, 2),
            verdict(logins.map(|r| r >= 2.0))
        )?;
        let cpu = ours.map(|s| s.parallel_logins.server_cpu_ms_per_login);
        writeln!(
            out,
            "| ≤ 2 ms server CPU per MCA login (parallel series) | {} ms | {} |",
            number(cpu, 2),
            verdict(cpu.map(|c| c <= 2.0))
        )?;
        let memory = ours.and_then(|s| s.held.pss_kib_per_session());
        writeln!(
            out,
            "| ≤ 64 KiB server memory per idle session (PSS) | {} KiB | {} |",
            number(memory, 1),
            verdict(memory.map(|m| m <= 64.0))
        )?;
        writeln!(out)
    }

    fn write_commands(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "### Exact commands\n")?;
        writeln!(out, "```sh")?;
        writeln!(
            out,
            "# iperf3 server in the inside namespace\nip netns exec INSIDE iperf3 -s -B {INSIDE_HOST}"
        )?;
        for reverse in [false, true] {
            writeln!(
                out,
                "ip netns exec CLIENT {}",
                iperf_args(self.plan.iperf_seconds, reverse).join(" ")
            )?;
        }
        for server in &self.servers {
            writeln!(out, "\n# {}", server.kind.label())?;
            writeln!(out, "ip netns exec SERVER {}", server.command)?;
            for (what, command) in &server.commands {
                writeln!(out, "# {what}\n{command}")?;
            }
        }
        writeln!(out, "```\n")?;
        writeln!(
            out,
            "openconnect gets `x` on stdin (`--passwd-on-stdin` reads a line first). The \
             certificates, both servers' configurations and the logs are in a temporary work \
             directory (`bench-lab --keep-work-dir` keeps it).\n"
        )
    }
}
