//! Least privilege: the application role of a provisioned database.

use mgmt_server::db::roles::{self, APPLICATION_ROLE, OWNER_ROLE};
use mgmt_server::db::{GLOBAL_DOMAIN_ID, audit};
use uuid::Uuid;

use crate::support;

#[tokio::test]
async fn the_application_role_cannot_rewrite_the_audit_log_or_alter_tables() {
    let cluster = support::cluster();
    let database = format!("t_{}", Uuid::new_v4().simple());
    cluster.create_database(&database).await.unwrap();
    cluster.provision_roles(&database).await.unwrap();
    let pool = roles::connect_as_application(
        Some(cluster.connect_options_as(&database, OWNER_ROLE)),
        cluster.connect_options_as(&database, APPLICATION_ROLE),
        4,
    )
    .await
    .unwrap();
    let role = roles::role_info(&pool).await.unwrap();
    assert_eq!(role.name, APPLICATION_ROLE);
    assert!(!role.superuser && !role.owns_tables, "{role:?}");

    // It writes what the application writes, the audit log included ...
    audit::login_failed(&pool, "mallory", None, "wrong name or password (REST API)")
        .await
        .unwrap();
    let domains: i64 = sqlx::query_scalar("SELECT count(*) FROM domains WHERE id = $1")
        .bind(GLOBAL_DOMAIN_ID)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(domains, 1);
    // ... but the database refuses it anything that would rewrite history.
    for (statement, expected) in [
        (
            "UPDATE audit_log SET detail = 'nothing happened'",
            "permission denied",
        ),
        ("DELETE FROM audit_log", "permission denied"),
        ("TRUNCATE audit_log", "permission denied"),
        (
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete",
            "must be owner",
        ),
        ("ALTER TABLE audit_log DROP COLUMN detail", "must be owner"),
        ("DELETE FROM _sqlx_migrations", "permission denied"),
        ("CREATE TABLE shadow (id int)", "permission denied"),
    ] {
        let error = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(error.to_string().contains(expected), "{statement}: {error}");
    }
    let kept: Option<String> =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE actor = 'mallory'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kept.as_deref(), Some("wrong name or password (REST API)"));
}

#[tokio::test]
async fn a_superuser_database_url_is_refused_unless_allowed() {
    use mgmt_server::server::{ManagementCenter, ServerSettings, StartError};
    let cluster = support::cluster();
    let database = format!("t_{}", Uuid::new_v4().simple());
    cluster.create_database(&database).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let settings = |allow_superuser| ServerSettings {
        data_dir: data.path().to_owned(),
        database_url: Some(cluster.connect_url(&database)),
        manager_name: "fmc".to_owned(),
        server_names: vec!["127.0.0.1".to_owned()],
        initial_admin: None,
        workers: mgmt_server::deploy::WorkerSettings::for_this_process(),
        database_owner_url: None,
        allow_superuser,
        secret_key_file: None,
    };
    let error = ManagementCenter::start(&settings(false)).await.unwrap_err();
    assert!(matches!(error, StartError::Superuser { .. }), "{error}");
    assert!(error.to_string().contains("--allow-superuser"), "{error}");
    let center = ManagementCenter::start(&settings(true)).await.unwrap();
    center.stop().await;
}

#[tokio::test]
async fn a_replica_with_another_secret_key_refuses_to_start_and_says_what_to_copy() {
    use mgmt_server::server::{ManagementCenter, ServerSettings, StartError};
    let cluster = support::cluster();
    let database = format!("t_{}", Uuid::new_v4().simple());
    cluster.create_database(&database).await.unwrap();
    cluster.provision_roles(&database).await.unwrap();
    let settings = |data: &std::path::Path| ServerSettings {
        data_dir: data.to_owned(),
        database_url: Some(cluster.connect_url_as(&database, APPLICATION_ROLE)),
        manager_name: "fmc".to_owned(),
        server_names: vec!["127.0.0.1".to_owned()],
        initial_admin: None,
        workers: mgmt_server::deploy::WorkerSettings::for_this_process(),
        database_owner_url: Some(cluster.connect_url_as(&database, OWNER_ROLE)),
        allow_superuser: false,
        secret_key_file: None,
    };
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let center = ManagementCenter::start(&settings(first.path()))
        .await
        .unwrap();
    // The second replica's data directory makes a key of its own: refused, with advice.
    let error = ManagementCenter::start(&settings(second.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StartError::WrongSecretKey { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("--secret-key-file"), "{error}");
    // With the first replica's key it starts.
    let mut shared = settings(second.path());
    shared.secret_key_file = Some(first.path().join("secret.key"));
    let replica = ManagementCenter::start(&shared).await.unwrap();
    replica.stop().await;
    center.stop().await;
}

#[tokio::test]
async fn replicas_starting_together_all_migrate_and_grant() {
    let cluster = support::cluster();
    let database = format!("t_{}", Uuid::new_v4().simple());
    cluster.create_database(&database).await.unwrap();
    cluster.provision_roles(&database).await.unwrap();
    // Before the grants took an advisory lock, concurrent GRANTs failed with "tuple
    // concurrently updated" and the losing replica refused to start.
    let starts = (0..4).map(|_| {
        roles::connect_as_application(
            Some(cluster.connect_options_as(&database, OWNER_ROLE)),
            cluster.connect_options_as(&database, APPLICATION_ROLE),
            2,
        )
    });
    for started in spawned_all(starts).await {
        let pool = started.unwrap();
        assert_eq!(
            roles::role_info(&pool).await.unwrap().name,
            APPLICATION_ROLE
        );
    }
}

async fn spawned_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}
