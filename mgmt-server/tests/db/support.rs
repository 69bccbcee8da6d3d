use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mgmt_server::db::cluster::Cluster;
use mgmt_server::db::{self, Actor};
use sqlx::PgPool;
use uuid::Uuid;

/// The cluster shared by every test of this binary. It is stopped when the binary
/// exits (the cluster's watchdog sees its pipe close).
pub(crate) fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let base = scratch_base();
        remove_stopped_clusters(&base);
        let dir = tempfile::Builder::new()
            .prefix("pg-")
            .tempdir_in(&base)
            .unwrap()
            .keep();
        // The cluster outlives every test's runtime, so it is started on a runtime of
        // its own (it keeps no runtime resources: the server is a child process).
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

/// A new, migrated database on the shared cluster.
pub(crate) async fn fresh_database() -> PgPool {
    let cluster = cluster();
    let name = format!("t_{}", Uuid::new_v4().simple());
    cluster.create_database(&name).await.unwrap();
    db::connect(cluster.connect_options(&name), 5)
        .await
        .unwrap()
}

pub(crate) fn admin() -> Actor {
    Actor::administrator("admin", Uuid::new_v4(), Some("192.0.2.10".parse().unwrap()))
}

/// A directory for throw-away clusters, inside the target directory.
pub(crate) fn scratch_base() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mgmt-server-db-tests");
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

/// A self-signed certificate and its key, PEM, made with rcgen.
pub(crate) fn certificate(common_name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec![format!("{common_name}.example.com")]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}
