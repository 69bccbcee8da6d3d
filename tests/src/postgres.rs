//! A throw-away PostgreSQL cluster shared by every test of one test binary (started on
//! first use with the machine's PostgreSQL binaries, stopped when the binary exits),
//! and a fresh, migrated database per test.

#![allow(clippy::unwrap_used)] // a fixture that cannot start fails the test loudly

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mgmt_server::db::{self, cluster::Cluster};
use sqlx::PgPool;
use uuid::Uuid;

/// The cluster of this test binary.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let base = scratch_base();
        remove_stopped_clusters(&base);
        let dir = tempfile::Builder::new()
            .prefix("pg-")
            .tempdir_in(&base)
            .unwrap()
            .keep();
        // The cluster outlives every test's runtime: start it on a runtime of its own
        // (it keeps no runtime resources; the server is a child process).
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(Cluster::start_for_tests(dir))
                .unwrap()
        })
        .join()
        .unwrap()
    })
}

/// A new database on the shared cluster, with the manager's schema.
pub async fn fresh_database() -> PgPool {
    let cluster = cluster();
    let name = format!("t_{}", Uuid::new_v4().simple());
    cluster.create_database(&name).await.unwrap();
    db::connect(cluster.connect_options(&name), 10)
        .await
        .unwrap()
}

/// Where the clusters live: the system temporary directory (not a network mount).
pub fn scratch_base() -> PathBuf {
    let base = std::env::temp_dir().join("vpn-platform-test-clusters");
    std::fs::create_dir_all(&base).unwrap();
    base
}

/// Clusters of earlier runs whose server has stopped (no postmaster.pid) are removed.
fn remove_stopped_clusters(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_cluster = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("pg-"));
        if is_cluster && !path.join("data/postmaster.pid").exists() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}
