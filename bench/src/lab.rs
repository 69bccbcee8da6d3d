//! The lab: network namespaces joined by veth pairs, processes that are stopped when
//! dropped, and what /proc says about a server's process tree (CPU time, memory).
//!
//! Topology, the same for each server under test:
//!
//! ```text
//! client ns 10.99.0.2 ──veth── 10.99.0.1 server ns 10.100.0.1 ──veth── 10.100.0.2 inside ns
//!                                 (VPN server, TUN, forwarding)          (iperf3 -s)
//! ```
//!
//! The address pool [`POOL_NETWORK`] is routed back from the inside host to the server.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub(crate) const SERVER_ADDRESS: &str = "10.99.0.1";
pub(crate) const CLIENT_ADDRESS: &str = "10.99.0.2";
pub(crate) const INSIDE_GATEWAY: &str = "10.100.0.1";
pub(crate) const INSIDE_HOST: &str = "10.100.0.2";
pub(crate) const INSIDE_NETWORK: &str = "10.100.0.0/24";
/// The clients' address pool (a /21: room for 2,000 sessions).
pub(crate) const POOL_NETWORK: &str = "192.168.72.0/21";
pub(crate) const TLS_PORT: u16 = 8443;
pub(crate) const DTLS_PORT: u16 = 443;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Catches Ctrl-C and SIGTERM from now on: the run stops at its next check and
/// everything it started is cleaned up by the guards' `Drop`.
pub(crate) fn catch_interrupts() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                let _ = ready_tx.send(false);
                return;
            };
            let _ = ready_tx.send(true);
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            INTERRUPTED.store(true, Ordering::SeqCst);
            eprintln!("bench-lab: interrupted, cleaning up");
        });
    });
    if ready_rx.recv().unwrap_or(false) {
        Ok(())
    } else {
        bail!("cannot install the SIGINT/SIGTERM handlers")
    }
}

/// Fails once Ctrl-C or SIGTERM has arrived.
pub(crate) fn check_interrupted() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps `duration`, failing early when interrupted.
pub(crate) fn pause(duration: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        check_interrupted()?;
        std::thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
    }
    Ok(())
}

/// Runs `args` and fails with its stderr unless it succeeds.
pub(crate) fn run(args: &[&str]) -> anyhow::Result<Output> {
    let (program, rest) = args.split_first().context("empty command")?;
    let output = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

/// A network namespace, deleted when dropped.
#[derive(Debug)]
pub(crate) struct Netns {
    name: String,
}

impl Netns {
    /// Creates `bench-<pid>-<n>-<role>` with its loopback up.
    pub(crate) fn create(role: &str) -> anyhow::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "bench-{}-{}-{role}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run(&["ip", "netns", "add", &name])?;
        let namespace = Self { name };
        run(&["ip", "-n", &namespace.name, "link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside this namespace.
    pub(crate) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The three namespaces of one server under test. Field order: namespaces go last.
pub(crate) struct Topology {
    pub(crate) client: Netns,
    pub(crate) server: Netns,
    pub(crate) inside: Netns,
}

impl Topology {
    pub(crate) fn create() -> anyhow::Result<Self> {
        let topology = Self {
            client: Netns::create("client")?,
            server: Netns::create("server")?,
            inside: Netns::create("inside")?,
        };
        let (c, s, i) = (
            topology.client.name(),
            topology.server.name(),
            topology.inside.name(),
        );
        // Device names live inside the namespaces, so they need not be unique.
        run(&[
            "ip", "link", "add", "vs0", "netns", s, "type", "veth", "peer", "name", "vc0", "netns",
            c,
        ])?;
        run(&[
            "ip", "link", "add", "vg0", "netns", s, "type", "veth", "peer", "name", "vi0", "netns",
            i,
        ])?;
        for (ns, dev, address) in [
            (s, "vs0", SERVER_ADDRESS),
            (c, "vc0", CLIENT_ADDRESS),
            (s, "vg0", INSIDE_GATEWAY),
            (i, "vi0", INSIDE_HOST),
        ] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                dev,
            ])?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
        }
        run(&[
            "ip",
            "netns",
            "exec",
            s,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ])?;
        run(&[
            "ip",
            "-n",
            i,
            "route",
            "add",
            POOL_NETWORK,
            "via",
            INSIDE_GATEWAY,
        ])?;
        // For the bare (no VPN) ceiling: client and inside host routed via the server.
        run(&[
            "ip",
            "-n",
            i,
            "route",
            "add",
            "10.99.0.0/24",
            "via",
            INSIDE_GATEWAY,
        ])?;
        Ok(topology)
    }

    /// Routes the inside network from the client over the bare veth (no VPN), or removes
    /// that route again (tunnels bring their own).
    pub(crate) fn bare_route(&self, present: bool) -> anyhow::Result<()> {
        let verb = if present { "add" } else { "del" };
        run(&[
            "ip",
            "-n",
            self.client.name(),
            "route",
            verb,
            INSIDE_NETWORK,
            "via",
            SERVER_ADDRESS,
        ])?;
        Ok(())
    }
}

/// A child process (and its descendants) stopped when dropped: SIGTERM, then SIGKILL
/// after two seconds.
pub(crate) struct Guarded {
    child: Child,
    pub(crate) label: String,
}

impl Guarded {
    pub(crate) fn spawn(mut command: Command, label: &str) -> anyhow::Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {label}"))?;
        Ok(Self {
            child,
            label: label.to_owned(),
        })
    }

    pub(crate) fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (and is reaped).
    pub(crate) fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` to the process itself.
    pub(crate) fn signal(&self, signal: Signal) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// Waits up to `limit` for the exit; true if it exited.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.has_exited() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM to the tree, SIGKILL to what is left after two seconds; reaps the child.
    pub(crate) fn stop(&mut self) {
        if self.has_exited() {
            return;
        }
        let tree = process_tree(self.child.id());
        signal_all(&tree, Signal::SIGTERM);
        if !self.wait_exit(Duration::from_secs(2)) {
            signal_all(&process_tree(self.child.id()), Signal::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Descendants that outlived their parent.
        signal_all(&tree, Signal::SIGKILL);
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal_all(pids: &[u32], signal: Signal) {
    for pid in pids {
        if let Ok(pid) = i32::try_from(*pid) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

/// `root` and all its live descendants (from the parent ids in /proc/*/stat).
pub(crate) fn process_tree(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(fields) = stat_fields(pid)
                && let Some(ppid) = fields.get(1).and_then(|f| f.parse::<u32>().ok())
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    tree
}

/// The fields of /proc/PID/stat after the command name: index 0 is `state` (field 3).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// CPU time and memory of a process tree at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    /// utime + stime + cutime + cstime summed over the tree, in clock ticks: children
    /// that exited and were reaped (ocserv's per-client workers) are included.
    pub(crate) cpu_ticks: u64,
    pub(crate) pss_kib: u64,
    pub(crate) rss_kib: u64,
    pub(crate) processes: usize,
}

impl Usage {
    pub(crate) fn of_tree(root: u32) -> Self {
        let mut usage = Self::default();
        for pid in process_tree(root) {
            let Some(fields) = stat_fields(pid) else {
                continue;
            };
            // utime, stime, cutime, cstime are fields 14–17, indexes 11–14 here.
            usage.cpu_ticks += fields
                .iter()
                .skip(11)
                .take(4)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum::<u64>();
            if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
                usage.pss_kib += kib_field(&rollup, "Pss:");
                usage.rss_kib += kib_field(&rollup, "Rss:");
            }
            usage.processes += 1;
        }
        usage
    }

    /// CPU seconds since `earlier`.
    pub(crate) fn cpu_seconds_since(&self, earlier: &Self, ticks_per_second: u64) -> f64 {
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / ticks_per_second.max(1) as f64
    }
}

/// CPU ticks of this process's children that have exited and been reaped (cutime +
/// cstime of /proc/self/stat): the clients a series ran and waited for.
pub(crate) fn reaped_children_ticks() -> u64 {
    stat_fields(std::process::id())
        .map(|fields| {
            fields
                .iter()
                .skip(13)
                .take(2)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

fn kib_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub(crate) fn ticks_per_second() -> anyhow::Result<u64> {
    let output = run(&["getconf", "CLK_TCK"])?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("getconf CLK_TCK printed no number")
}

/// Waits until something listens on TCP `port` in namespace `ns`, or `process` exits.
pub(crate) fn wait_listening(
    ns: &Netns,
    port: u16,
    process: &mut Guarded,
    log: &Path,
) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        check_interrupted()?;
        let output = ns
            .command("ss")
            .args(["-Hltn", &format!("sport = :{port}")])
            .output()?;
        if !String::from_utf8_lossy(&output.stdout).trim().is_empty() {
            return Ok(());
        }
        if process.has_exited() || Instant::now() > end {
            bail!(
                "{} is not listening on {port}; its log:\n{}",
                process.label,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_fields_of_smaps_rollup_are_read_in_kib() {
        let rollup = "55d0c0a00000-7ffc1b5f9000 ---p 00000000 00:00 0  [rollup]\n\
                      Rss:               10240 kB\n\
                      Pss:                8192 kB\n\
                      Pss_Anon:           4096 kB\n";
        assert_eq!(kib_field(rollup, "Rss:"), 10240);
        assert_eq!(kib_field(rollup, "Pss:"), 8192);
        assert_eq!(kib_field(rollup, "Swap:"), 0);
    }

    #[test]
    fn a_process_tree_starts_with_its_root_and_holds_its_children() {
        let mut sleep = Command::new("sleep");
        sleep.arg("30");
        let child = Guarded::spawn(sleep, "sleep").unwrap();
        let tree = process_tree(std::process::id());
        assert_eq!(tree.first(), Some(&std::process::id()));
        assert!(tree.contains(&child.pid()));
    }
}
