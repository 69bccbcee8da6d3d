use mgmt_server::db::cluster::{Cluster, ClusterError};
use mgmt_server::db::{self, GLOBAL_DOMAIN_ID, pools};

use crate::support;

#[tokio::test]
async fn a_restarted_cluster_keeps_its_data() {
    let dir = tempfile::Builder::new()
        .prefix("restart-")
        .tempdir_in(support::scratch_base())
        .unwrap();
    let pool_name;
    {
        let cluster = Cluster::start_for_tests(dir.path()).await.unwrap();
        cluster.create_database("mgmt").await.unwrap();
        let pool = db::connect(cluster.connect_options("mgmt"), 2)
            .await
            .unwrap();
        let created = pools::create_ipv4(
            &mut pool.acquire().await.unwrap(),
            &support::admin(),
            GLOBAL_DOMAIN_ID,
            &pools::Ipv4AddressPoolInput {
                name: "kept".to_owned(),
                description: String::new(),
                start: "10.9.0.10".parse().unwrap(),
                end: "10.9.0.20".parse().unwrap(),
                mask: "255.255.255.0".parse().unwrap(),
                overridable: false,
            },
        )
        .await
        .unwrap();
        pool_name = created.name;
        pool.close().await;
        cluster.stop().unwrap();
    }
    assert!(
        !dir.path().join("data/postmaster.pid").exists(),
        "the server is still running"
    );

    let cluster = Cluster::start_for_tests(dir.path()).await.unwrap();
    // Creating the database again is a no-op; migrations are already applied.
    cluster.create_database("mgmt").await.unwrap();
    let pool = db::connect(cluster.connect_options("mgmt"), 2)
        .await
        .unwrap();
    let listed = pools::list_ipv4(&pool, GLOBAL_DOMAIN_ID, db::Page::ALL)
        .await
        .unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.items[0].name, pool_name);
    pool.close().await;
    cluster.stop().unwrap();
}

#[tokio::test]
async fn the_connect_url_reaches_the_cluster() {
    let cluster = support::cluster();
    let url = cluster.connect_url("postgres");
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn the_cluster_listens_on_no_tcp_port_and_runs_postgresql_15() {
    let pool = support::fresh_database().await;
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(listen, "");
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(version.starts_with("15."), "{version}");
}

#[tokio::test]
async fn a_second_cluster_on_a_running_data_directory_is_refused() {
    let dir = tempfile::Builder::new()
        .prefix("twice-")
        .tempdir_in(support::scratch_base())
        .unwrap();
    let first = Cluster::start_for_tests(dir.path()).await.unwrap();
    let error = Cluster::start_for_tests(dir.path()).await.unwrap_err();
    assert!(
        matches!(error, ClusterError::AlreadyRunning { .. }),
        "{error}"
    );
    // The first cluster is untouched.
    let pool = first.pool("postgres").await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
    pool.close().await;
    first.stop().unwrap();
}

#[tokio::test]
async fn a_new_database_has_the_global_domain_with_fmcs_uuid() {
    let pool = support::fresh_database().await;
    let all = db::domains::list(&pool).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, "Global");
    assert_eq!(all[0].id, GLOBAL_DOMAIN_ID);
    let error = db::domains::get(&pool, uuid::Uuid::new_v4())
        .await
        .unwrap_err();
    assert!(matches!(error, db::DbError::NotFound { .. }), "{error}");
}
