//! The workspace's own executables for tests of another package: cargo builds the
//! package's binary (once per test process, a no-op when it is up to date) into the
//! target directory and profile the running test was built in, exactly as
//! `cargo build -p <package>` builds the product, so a test never runs a stale binary.

#![allow(clippy::unwrap_used)] // fixtures fail loudly on purpose

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// This workspace's `mgmt-server` executable.
pub fn manager() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build("mgmt-server"))
}

/// Builds `package`'s binary of the same name; returns its path.
pub fn build(package: &str) -> PathBuf {
    // A test or benchmark executable lives in <target dir>/<profile dir>/deps/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().unwrap();
    assert!(
        target_dir.join("CACHEDIR.TAG").exists(),
        "{} is not in a cargo target directory's <profile>/deps (runs with --target are not supported)",
        exe.display()
    );
    let profile = match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("debug") => "dev",
        Some(name) => name, // release (also what `cargo bench` builds into) or a custom profile
        None => panic!("no profile directory above {}", exe.display()),
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--package", package, "--bin", package])
        .args(["--profile", profile])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    eprintln!("e2e: building the {package} binary: {command:?}");
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {package}: {e}"));
    assert!(status.success(), "{command:?} failed: {status}");
    let binary = profile_dir.join(package);
    assert!(
        binary.exists(),
        "{} is missing after the build",
        binary.display()
    );
    binary
}
