use mgmt_server::db::audit::{self, AuditAction, AuditFilter, NewAuditEntry};
use mgmt_server::db::pools::{self, Ipv4AddressPoolInput};
use mgmt_server::db::{Actor, GLOBAL_DOMAIN_ID, ObjectKind, Page};
use time::{Duration, OffsetDateTime};

use crate::support;

fn pool_input(name: &str) -> Ipv4AddressPoolInput {
    Ipv4AddressPoolInput {
        name: name.to_owned(),
        description: String::new(),
        start: "10.30.0.1".parse().unwrap(),
        end: "10.30.0.9".parse().unwrap(),
        mask: "255.255.255.0".parse().unwrap(),
        overridable: false,
    }
}

#[tokio::test]
async fn every_change_writes_one_audit_row_with_who_when_where_before_and_after() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    let started = OffsetDateTime::now_utc() - Duration::seconds(5);

    let created = pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &pool_input("P1"))
        .await
        .unwrap();
    pools::update_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        1,
        &pool_input("P2"),
    )
    .await
    .unwrap();
    // A refused (stale) update leaves no audit row.
    pools::update_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        1,
        &pool_input("P3"),
    )
    .await
    .unwrap_err();
    pools::delete_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, None)
        .await
        .unwrap();

    let rows = audit::list(
        &pool,
        &AuditFilter {
            object_id: Some(created.id),
            ..AuditFilter::default()
        },
        Page::ALL,
    )
    .await
    .unwrap();
    let actions: Vec<AuditAction> = rows.items.iter().map(|r| r.action.0).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Delete,
            AuditAction::Update,
            AuditAction::Create
        ]
    );
    for row in &rows.items {
        assert_eq!(row.actor, "admin");
        assert_eq!(row.actor_id, admin.id);
        assert_eq!(row.source_address.0, admin.source_address);
        assert_eq!(row.object_type, "IPv4AddressPool");
        assert_eq!(row.domain_id, Some(GLOBAL_DOMAIN_ID));
        assert!(row.occurred_at >= started);
        assert_eq!(row.occurred_at.offset(), time::UtcOffset::UTC);
    }
    let update = &rows.items[1];
    assert_eq!(update.before.as_ref().unwrap()["name"], "P1");
    assert_eq!(update.after.as_ref().unwrap()["name"], "P2");
    assert_eq!(update.object_name.as_deref(), Some("P2"));
    assert!(rows.items[0].after.is_none());
    assert!(rows.items[2].before.is_none());
}

#[tokio::test]
async fn the_database_refuses_to_update_delete_or_truncate_audit_rows() {
    let pool = support::fresh_database().await;
    let actor = Actor::system();
    audit::record(
        &pool,
        &NewAuditEntry {
            actor: &actor,
            domain_id: None,
            action: AuditAction::LoginFailed,
            object_kind: ObjectKind::Administrator,
            object_id: None,
            object_name: Some("mallory"),
            before: None,
            after: None,
            detail: Some("wrong password"),
        },
    )
    .await
    .unwrap();

    for statement in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    let rows = audit::list(&pool, &AuditFilter::default(), Page::ALL)
        .await
        .unwrap();
    assert_eq!(rows.total, 1);
    assert_eq!(rows.items[0].actor, "system");
    assert_eq!(rows.items[0].detail.as_deref(), Some("wrong password"));
}

#[tokio::test]
async fn a_change_whose_transaction_rolls_back_leaves_neither_the_change_nor_its_audit_row() {
    let pool = support::fresh_database().await;
    let mut tx = pool.begin().await.unwrap();
    pools::create_ipv4(
        &mut tx,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        &pool_input("GONE"),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        pools::list_ipv4(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        audit::list(&pool, &AuditFilter::default(), Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn audit_rows_are_listed_newest_first_with_filters_and_paging() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    for name in ["A", "B", "C"] {
        pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &pool_input(name))
            .await
            .unwrap();
    }
    let page = audit::list(
        &pool,
        &AuditFilter::default(),
        Page {
            offset: 1,
            limit: 1,
        },
    )
    .await
    .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].object_name.as_deref(), Some("B"));
    let none = audit::list(
        &pool,
        &AuditFilter {
            actor: Some("nobody".to_owned()),
            ..AuditFilter::default()
        },
        Page::ALL,
    )
    .await
    .unwrap();
    assert_eq!(none.total, 0);
}
