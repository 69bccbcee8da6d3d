//! Network namespaces for tests that run real clients and servers (`ip netns`).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace with its loopback up, deleted when dropped, even when the test
/// fails. Creating one needs root; a test that cannot create it fails, it never skips.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `<prefix>-<pid>-<n>`, unique within the machine while the process lives.
    pub fn create(prefix: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let output = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("iproute2 `ip` must be installed");
        assert!(
            output.status.success(),
            "cannot create network namespace {name} (the test needs root): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let namespace = Self { name };
        let lo = Command::new("ip")
            .args(["-n", &namespace.name, "link", "set", "lo", "up"])
            .output()
            .expect("iproute2 `ip` must be installed");
        assert!(
            lo.status.success(),
            "cannot bring up lo in {}: {}",
            namespace.name,
            String::from_utf8_lossy(&lo.stderr)
        );
        namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_exists_while_held_and_is_removed_when_dropped() {
        let listed = |name: &str| {
            let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.split_whitespace().next() == Some(name))
        };
        let netns = Netns::create("e2e-selftest");
        let name = netns.name().to_owned();
        assert!(listed(&name));
        drop(netns);
        assert!(!listed(&name));
    }
}
