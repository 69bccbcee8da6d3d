//! The measurements, each run with openconnect in the client namespace against one
//! server: iperf3 throughput, logins, connect-to-tunnel-up latency, held sessions.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::Signal;

use crate::lab::{
    Guarded, INSIDE_HOST, INSIDE_NETWORK, SERVER_ADDRESS, TLS_PORT, Topology, Usage,
    check_interrupted, pause, reaped_children_ticks,
};
use crate::servers::{Credentials, Server, join};

pub(crate) const OPENCONNECT: &str = "/usr/sbin/openconnect";

/// Whether a tunnel carries its data over DTLS or only over CSTP (TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Tls,
    Dtls,
}

impl Transport {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Tls => "CSTP/TLS",
            Self::Dtls => "DTLS",
        }
    }
}

/// openconnect against one server from the client namespace.
pub(crate) struct Client<'a> {
    pub(crate) topology: &'a Topology,
    pub(crate) credentials: &'a Credentials,
    pub(crate) server: &'a Server,
    pub(crate) dir: PathBuf,
    pub(crate) ticks_per_second: u64,
}

impl Client<'_> {
    /// The openconnect arguments (after the program) for a login plus `extra`.
    pub(crate) fn openconnect_args(&self, extra: &[OsString]) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--protocol=anyconnect".into(),
            "--non-inter".into(),
            "--passwd-on-stdin".into(),
        ];
        args.extend(self.server.login_args(self.credentials));
        args.push("--cafile".into());
        args.push(self.credentials.server_ca.clone().into());
        args.push(format!("--resolve=localhost:{SERVER_ADDRESS}").into());
        args.extend_from_slice(extra);
        args.push(format!("https://localhost:{TLS_PORT}").into());
        args
    }

    /// The command line shown in the report.
    pub(crate) fn shown(&self, extra: &[OsString]) -> String {
        format!(
            "ip netns exec CLIENT openconnect {}",
            join(&self.openconnect_args(extra))
        )
    }

    fn openconnect(&self, extra: &[OsString]) -> Command {
        let mut command = self.topology.client.command(OPENCONNECT);
        command.args(self.openconnect_args(extra));
        command
    }

    fn usage(&self) -> Usage {
        Usage::of_tree(self.server.process.pid())
    }

    /// The server CPU seconds between two samples.
    fn cpu_seconds(&self, before: &Usage, after: &Usage) -> f64 {
        after.cpu_seconds_since(before, self.ticks_per_second)
    }
}

/// Writes `x` to the child's stdin (`--passwd-on-stdin` reads a line first) and closes it.
fn feed_stdin(child: &mut std::process::Child) {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"x\n");
    }
}

/// One iperf3 run: the rate and what the server spent on it.
#[derive(Debug, Clone)]
pub(crate) struct Throughput {
    pub(crate) gbit_per_s: f64,
    /// Server CPU time over wall time, in % of one core.
    pub(crate) server_cpu_percent: Option<f64>,
    /// The same for the client's openconnect process.
    pub(crate) client_cpu_percent: Option<f64>,
    pub(crate) retransmits: u64,
}

impl Throughput {
    pub(crate) fn cpu_percent_per_gbit(&self) -> Option<f64> {
        self.server_cpu_percent
            .map(|cpu| cpu / self.gbit_per_s.max(1e-9))
    }
}

/// The processes whose CPU time an iperf3 run samples: the server's tree and the
/// client's openconnect.
pub(crate) struct Sampled {
    pub(crate) server: u32,
    pub(crate) client: u32,
    pub(crate) ticks_per_second: u64,
}

impl Sampled {
    fn sample(&self) -> (Usage, Usage) {
        (Usage::of_tree(self.server), Usage::of_tree(self.client))
    }
}

/// The iperf3 server on the inside host, for the topology's life.
pub(crate) fn start_iperf_server(topology: &Topology, dir: &Path) -> anyhow::Result<Guarded> {
    let mut command = topology.inside.command("iperf3");
    command
        .args(["-s", "-B", INSIDE_HOST])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("iperf3-server.log"))?)
        .stderr(Stdio::null());
    let mut process = Guarded::spawn(command, "iperf3 -s")?;
    crate::lab::wait_listening(
        &topology.inside,
        5201,
        &mut process,
        &dir.join("iperf3-server.log"),
    )?;
    Ok(process)
}

/// The iperf3 client command (program and arguments) for `seconds`, reversed (`-R`:
/// inside host → client) or not.
pub(crate) fn iperf_args(seconds: u32, reverse: bool) -> Vec<String> {
    let mut args = vec![
        "iperf3".to_owned(),
        "-c".to_owned(),
        INSIDE_HOST.to_owned(),
        "-t".to_owned(),
        seconds.to_string(),
        "-J".to_owned(),
    ];
    if reverse {
        args.push("-R".to_owned());
    }
    args
}

/// Runs iperf3 from the client namespace to the inside host, sampling `server`'s CPU.
pub(crate) fn iperf(
    topology: &Topology,
    sampled: Option<&Sampled>,
    seconds: u32,
    reverse: bool,
) -> anyhow::Result<Throughput> {
    check_interrupted()?;
    let args = iperf_args(seconds, reverse);
    let before = sampled.map(Sampled::sample);
    let started = Instant::now();
    let output = topology
        .client
        .command(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .context("cannot run iperf3")?;
    let wall = started.elapsed().as_secs_f64();
    let after = sampled.map(Sampled::sample);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "iperf3 printed no JSON: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    if let Some(error) = report["error"].as_str() {
        bail!("iperf3: {error}");
    }
    let end = &report["end"];
    let bits_per_second = end["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3 JSON without end.sum_received.bits_per_second")?;
    let (server_cpu_percent, client_cpu_percent) = match (sampled, before, after) {
        (
            Some(sampled),
            Some((server_before, client_before)),
            Some((server_after, client_after)),
        ) => {
            let percent = |before: &Usage, after: &Usage| {
                after.cpu_seconds_since(before, sampled.ticks_per_second) / wall * 100.0
            };
            (
                Some(percent(&server_before, &server_after)),
                Some(percent(&client_before, &client_after)),
            )
        }
        _ => (None, None),
    };
    Ok(Throughput {
        gbit_per_s: bits_per_second / 1e9,
        server_cpu_percent,
        client_cpu_percent,
        retransmits: end["sum_sent"]["retransmits"].as_u64().unwrap_or(0),
    })
}

/// A full tunnel on a TUN device in the client namespace.
pub(crate) struct Tunnel {
    pub(crate) process: Guarded,
    pub(crate) stdout: PathBuf,
    /// The vpnc-script writes the tunnel MTU here once it has configured the device.
    marker: PathBuf,
}

impl Tunnel {
    /// The MTU the tunnel got, once configured.
    pub(crate) fn configured_mtu(&self) -> Option<String> {
        std::fs::read_to_string(&self.marker)
            .ok()
            .map(|mtu| mtu.trim().to_owned())
            .filter(|mtu| !mtu.is_empty())
    }

    /// Whether openconnect reported DTLS connected.
    pub(crate) fn dtls_connected(&self) -> bool {
        std::fs::read_to_string(&self.stdout)
            .map(|out| out.contains("DTLS connected"))
            .unwrap_or(false)
    }

    /// Logs out (SIGINT: openconnect sends BYE) and waits for the exit.
    pub(crate) fn close(mut self) {
        self.process.signal(Signal::SIGINT);
        if !self.process.wait_exit(Duration::from_secs(5)) {
            self.process.stop();
        }
    }
}

impl Client<'_> {
    /// The vpnc-script for device `tun`: brings it up with the pushed MTU and address,
    /// routes the inside network into it, then writes the MTU to the marker file.
    fn vpnc_script(&self, tun: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let script = self.dir.join(format!("vpnc-script-{tun}.sh"));
        let marker = self.dir.join(format!("configured-{tun}"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n\
                 if [ \"$reason\" = connect ]; then\n\
                 \x20 ip link set \"$TUNDEV\" up mtu \"$INTERNAL_IP4_MTU\"\n\
                 \x20 ip addr add \"$INTERNAL_IP4_ADDRESS/32\" dev \"$TUNDEV\"\n\
                 \x20 ip route replace {INSIDE_NETWORK} dev \"$TUNDEV\"\n\
                 \x20 echo \"$INTERNAL_IP4_MTU\" > {marker}.tmp && mv {marker}.tmp {marker}\n\
                 fi\n\
                 exit 0\n",
                marker = marker.display()
            ),
        )?;
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok((script, marker))
    }

    /// The extra openconnect arguments of a tunnel on `tun` over `transport`.
    pub(crate) fn tunnel_args(
        &self,
        tun: &str,
        transport: Transport,
    ) -> anyhow::Result<Vec<OsString>> {
        let (script, _) = self.vpnc_script(tun)?;
        let mut extra: Vec<OsString> =
            vec!["-i".into(), tun.into(), "--script".into(), script.into()];
        if transport == Transport::Tls {
            extra.push("--no-dtls".into());
        }
        Ok(extra)
    }

    /// Starts a tunnel on `tun`; does not wait.
    pub(crate) fn spawn_tunnel(&self, tun: &str, transport: Transport) -> anyhow::Result<Tunnel> {
        let (_, marker) = self.vpnc_script(tun)?;
        let _ = std::fs::remove_file(&marker);
        let stdout = self.dir.join(format!("openconnect-{tun}.out"));
        let mut command = self.openconnect(&self.tunnel_args(tun, transport)?);
        command
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&stdout)?)
            .stderr(
                std::fs::File::options()
                    .append(true)
                    .create(true)
                    .open(self.dir.join(format!("openconnect-{tun}.err")))?,
            );
        let mut process = Guarded::spawn(command, "openconnect")?;
        feed_stdin(process.child_mut());
        Ok(Tunnel {
            process,
            stdout,
            marker,
        })
    }

    /// Starts a tunnel and waits until its device is configured (30 s at most).
    pub(crate) fn connect_tunnel(&self, tun: &str, transport: Transport) -> anyhow::Result<Tunnel> {
        let mut tunnel = self.spawn_tunnel(tun, transport)?;
        let end = Instant::now() + Duration::from_secs(30);
        while tunnel.configured_mtu().is_none() {
            check_interrupted()?;
            if tunnel.process.has_exited() || Instant::now() > end {
                bail!(
                    "the {} tunnel to {} did not come up; openconnect said:\n{}\n{}",
                    transport.label(),
                    self.server.kind.label(),
                    std::fs::read_to_string(&tunnel.stdout).unwrap_or_default(),
                    std::fs::read_to_string(self.dir.join(format!("openconnect-{tun}.err")))
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(tunnel)
    }

    /// Pings the inside host through `tun` until one answer comes (5 s at most).
    pub(crate) fn ping_through(&self, tun: &str) -> anyhow::Result<bool> {
        let status = self
            .topology
            .client
            .command("ping")
            .args([
                "-n",
                "-q",
                "-c",
                "1",
                "-w",
                "5",
                "-i",
                "0.01",
                "-I",
                tun,
                INSIDE_HOST,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok(status.success())
    }
}

/// Latency percentiles of a series of attempts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Latencies {
    pub(crate) samples_ms: Vec<f64>,
    pub(crate) failures: usize,
    pub(crate) first_failure: Option<String>,
}

impl Latencies {
    /// The `q`-quantile (nearest rank), in ms.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let mut sorted = self.samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return None;
        }
        let rank = (q * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
    }
}

/// Logins (`openconnect --authenticate`): latency, rate, server CPU.
#[derive(Debug, Clone, Default)]
pub(crate) struct Logins {
    pub(crate) latencies: Latencies,
    pub(crate) per_second: f64,
    pub(crate) server_cpu_ms_per_login: f64,
    /// CPU of the openconnect processes (and `ip netns exec`) per login.
    pub(crate) client_cpu_ms_per_login: f64,
}

impl Client<'_> {
    /// `total` logins, `parallel` at a time; a login succeeds when openconnect exits 0
    /// and prints a COOKIE.
    pub(crate) fn logins(&self, total: usize, parallel: usize) -> anyhow::Result<Logins> {
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Latencies::default());
        let before = self.usage();
        let clients_before = reaped_children_ticks();
        let started = Instant::now();
        let extra: Vec<OsString> = vec!["--authenticate".into()];
        std::thread::scope(|scope| {
            for _ in 0..parallel {
                scope.spawn(|| {
                    while next.fetch_add(1, Ordering::SeqCst) < total {
                        if check_interrupted().is_err() {
                            return;
                        }
                        let attempt = Instant::now();
                        let outcome = self
                            .openconnect(&extra)
                            .stdin(Stdio::piped())
                            .stdout(Stdio::piped())
                            .stderr(Stdio::piped())
                            .spawn()
                            .and_then(|mut child| {
                                feed_stdin(&mut child);
                                child.wait_with_output()
                            });
                        let elapsed = attempt.elapsed().as_secs_f64() * 1000.0;
                        let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                        match outcome {
                            Ok(output)
                                if output.status.success()
                                    && String::from_utf8_lossy(&output.stdout)
                                        .contains("COOKIE=") =>
                            {
                                results.samples_ms.push(elapsed);
                            }
                            Ok(output) => {
                                results.failures += 1;
                                results.first_failure.get_or_insert_with(|| {
                                    String::from_utf8_lossy(&output.stderr).into_owned()
                                });
                            }
                            Err(e) => {
                                results.failures += 1;
                                results.first_failure.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                });
            }
        });
        check_interrupted()?;
        let wall = started.elapsed().as_secs_f64();
        let after = self.usage();
        let clients_ticks = reaped_children_ticks().saturating_sub(clients_before);
        let latencies = results.into_inner().unwrap_or_else(|e| e.into_inner());
        let successes = latencies.samples_ms.len();
        let attempts = (successes + latencies.failures).max(1) as f64;
        Ok(Logins {
            client_cpu_ms_per_login: clients_ticks as f64 * 1000.0
                / self.ticks_per_second.max(1) as f64
                / attempts,
            per_second: successes as f64 / wall,
            server_cpu_ms_per_login: self.cpu_seconds(&before, &after) * 1000.0
                / successes.max(1) as f64,
            latencies,
        })
    }

    /// Connect-to-tunnel-up: from starting openconnect until a ping through the new
    /// tunnel to the inside host is answered; `count` times, one after the other.
    pub(crate) fn connect_latency(
        &self,
        count: usize,
        transport: Transport,
    ) -> anyhow::Result<Latencies> {
        let mut latencies = Latencies::default();
        for _ in 0..count {
            check_interrupted()?;
            let started = Instant::now();
            match self.connect_tunnel("bt1", transport) {
                Ok(tunnel) => {
                    if self.ping_through("bt1")? {
                        latencies
                            .samples_ms
                            .push(started.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        latencies.failures += 1;
                        latencies
                            .first_failure
                            .get_or_insert_with(|| "no ping answer through the tunnel".into());
                    }
                    tunnel.close();
                }
                Err(e) => {
                    latencies.failures += 1;
                    latencies
                        .first_failure
                        .get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
        Ok(latencies)
    }
}

/// Idle sessions held at once and the server memory they cost.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeldSessions {
    pub(crate) wanted: usize,
    pub(crate) up: usize,
    pub(crate) before: Usage,
    pub(crate) after: Usage,
    pub(crate) setup_seconds: f64,
    pub(crate) failure: Option<String>,
}

impl HeldSessions {
    pub(crate) fn pss_kib_per_session(&self) -> Option<f64> {
        (self.up > 0)
            .then(|| self.after.pss_kib.saturating_sub(self.before.pss_kib) as f64 / self.up as f64)
    }

    pub(crate) fn rss_kib_per_session(&self) -> Option<f64> {
        (self.up > 0)
            .then(|| self.after.rss_kib.saturating_sub(self.before.rss_kib) as f64 / self.up as f64)
    }
}

/// How many held-session clients may be connecting at the same time.
const CONNECTING_AT_ONCE: usize = 16;

impl Client<'_> {
    /// The extra arguments of a held session: no TUN device, the traffic goes to a
    /// script (`--script-tun`) that notes it is up and reads the packets from the
    /// socket openconnect hands it as file descriptor `$VPNFD`.
    pub(crate) fn held_args(&self) -> anyhow::Result<(Vec<OsString>, PathBuf)> {
        let marker = self.dir.join("held-up");
        let script = self.dir.join("held-session.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho up >> {}\nexec cat <&\"$VPNFD\" > /dev/null\n",
                marker.display()
            ),
        )?;
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok((
            vec!["--script-tun".into(), "--script".into(), script.into()],
            marker,
        ))
    }

    /// Opens `count` idle tunnels, waits for them to settle, samples the server's memory,
    /// and logs them all out.
    pub(crate) fn held_sessions(&self, count: usize) -> anyhow::Result<HeldSessions> {
        let (extra, marker) = self.held_args()?;
        let _ = std::fs::remove_file(&marker);
        let log = std::fs::File::options()
            .append(true)
            .create(true)
            .open(self.dir.join("held-clients.log"))?;
        let mut held = HeldSessions {
            wanted: count,
            before: self.usage(),
            ..HeldSessions::default()
        };
        let up = || {
            std::fs::read_to_string(&marker)
                .map(|text| text.lines().count())
                .unwrap_or(0)
        };
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60 + count as u64 / 4);
        let mut clients: Vec<Guarded> = Vec::with_capacity(count);
        loop {
            check_interrupted()?;
            let now_up = up();
            if now_up >= count {
                break;
            }
            if Instant::now() > deadline {
                held.failure = Some(format!(
                    "only {now_up} of {count} sessions came up in {:.0} s",
                    started.elapsed().as_secs_f64()
                ));
                break;
            }
            let exited = clients
                .iter_mut()
                .map(|c| c.has_exited())
                .filter(|e| *e)
                .count();
            let connecting = clients.len().saturating_sub(now_up + exited);
            for _ in connecting..CONNECTING_AT_ONCE {
                if clients.len() >= count {
                    break;
                }
                let mut command = self.openconnect(&extra);
                command
                    .stdin(Stdio::piped())
                    .stdout(log.try_clone()?)
                    .stderr(log.try_clone()?);
                let mut client = Guarded::spawn(command, "openconnect")?;
                feed_stdin(client.child_mut());
                clients.push(client);
            }
            if exited > count / 10 + 5 {
                held.failure = Some(format!(
                    "{exited} clients exited; see held-clients.log in the work directory"
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        held.setup_seconds = started.elapsed().as_secs_f64();
        // Let DTLS handshakes and MTU probes finish; then the sessions are idle.
        pause(Duration::from_secs(5))?;
        let alive = clients
            .iter_mut()
            .map(|c| c.has_exited())
            .filter(|e| !e)
            .count();
        held.up = up().min(alive);
        held.after = self.usage();
        // Log everyone out (SIGTERM: openconnect sends BYE), then make sure.
        for client in &clients {
            client.signal(Signal::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end && clients.iter_mut().any(|c| !c.has_exited()) {
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(clients);
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_over_the_successful_samples() {
        let latencies = Latencies {
            samples_ms: (1..=100).rev().map(f64::from).collect(),
            failures: 3,
            first_failure: None,
        };
        assert_eq!(latencies.quantile(0.5), Some(50.0));
        assert_eq!(latencies.quantile(0.99), Some(99.0));
        assert_eq!(Latencies::default().quantile(0.5), None);
    }
}
