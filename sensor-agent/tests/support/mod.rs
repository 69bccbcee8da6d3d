//! Helpers shared by the binary tests: the agent process in a network namespace, the
//! operator CLI, and code run inside the namespace.

#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::unwrap_used)] // fixtures fail loudly on purpose

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::netns::Netns;

pub(crate) const AGENT: &str = env!("CARGO_BIN_EXE_sensor-agent");

/// The agent process, interrupted and reaped when dropped.
pub(crate) struct Agent(pub(crate) Child);

impl Agent {
    pub(crate) fn interrupt(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "agent did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn operator(socket: &Path, words: &[&str]) -> Output {
    Command::new(AGENT)
        .arg("--control-socket")
        .arg(socket)
        .args(words)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The agent started with `args`, waited for until its control socket appears.
pub(crate) fn start_agent(netns: &Netns, socket: &Path, args: &[&std::ffi::OsStr]) -> Agent {
    let has = |flag: &str| args.iter().any(|a| *a == std::ffi::OsStr::new(flag));
    let mut defaults: Vec<&str> = Vec::new();
    if !has("--tun-name") {
        defaults.extend(["--tun-name", "satun7", "--tun-ipv4", "10.66.0.1/24"]);
    }
    // The log goes to a file beside the socket: a pipe nobody reads would fill up and
    // stall the agent.
    let log_path = socket.with_extension("log");
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let log = std::fs::File::create(&log_path).unwrap();
    let mut agent = Agent(
        Command::new("ip")
            .args(["netns", "exec", netns.name(), AGENT, "--control-socket"])
            .arg(socket)
            .arg("run")
            .args(&defaults)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        if let Some(status) = agent.0.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("agent exited with {status}: {stderr}");
        }
        assert!(Instant::now() < deadline, "control socket never appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
    agent
}

/// Runs `f` on a thread inside the namespace.
pub(crate) fn in_netns<T: Send + 'static>(
    netns: &Netns,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let path = format!("/var/run/netns/{}", netns.name());
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// The manager's side of the channel, run inside `netns` (its own runtime).
pub(crate) fn as_manager<T: Send + 'static>(
    netns: &Netns,
    f: impl AsyncFnOnce() -> T + Send + 'static,
) -> T {
    in_netns(netns, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
}
