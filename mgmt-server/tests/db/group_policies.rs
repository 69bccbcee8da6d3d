use mgmt_server::db::group_policies::{self, DEFAULT_GROUP_POLICY_ID, GroupPolicyInput};
use mgmt_server::db::pools::{self, Ipv4AddressPoolInput};
use mgmt_server::db::{DbError, GLOBAL_DOMAIN_ID, ObjectKind, Page};
use vpn_core::config::SplitTunnelPolicy;

use crate::support;

fn pool_input(name: &str) -> Ipv4AddressPoolInput {
    Ipv4AddressPoolInput {
        name: name.to_owned(),
        description: String::new(),
        start: "10.20.0.10".parse().unwrap(),
        end: "10.20.0.99".parse().unwrap(),
        mask: "255.255.255.0".parse().unwrap(),
        overridable: false,
    }
}

#[tokio::test]
async fn a_group_policy_keeps_every_field_and_its_pools_in_order() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    let a = pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &pool_input("A"))
        .await
        .unwrap();
    let b = pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &pool_input("B"))
        .await
        .unwrap();

    let mut input = GroupPolicyInput::new("Engineering");
    input.banner = Some("Authorised use only".to_owned());
    input.dns_servers = vec![
        "192.0.2.53".parse().unwrap(),
        "2001:db8::53".parse().unwrap(),
    ];
    input.default_domain = Some("corp.example.com".to_owned());
    input.split_tunnel_policy = SplitTunnelPolicy::TunnelSpecified;
    input.split_tunnel_networks = vec![
        "10.0.0.0/8".parse().unwrap(),
        "2001:db8:1::/48".parse().unwrap(),
        // Stored as given, host bits included.
        "192.0.2.7/24".parse().unwrap(),
    ];
    input.ipv4_pool_ids = vec![b.id, a.id];
    input.mtu = 1300;
    input.keepalive_secs = None;
    input.max_connect_time_minutes = Some(600);
    input.simultaneous_logins = 1;
    input.dtls_enabled = false;

    let created = group_policies::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &input)
        .await
        .unwrap();
    assert_eq!(created.banner.as_deref(), Some("Authorised use only"));
    assert_eq!(created.dns_servers, input.dns_servers);
    assert_eq!(
        created.split_tunnel_policy,
        SplitTunnelPolicy::TunnelSpecified
    );
    assert_eq!(created.split_tunnel_networks, input.split_tunnel_networks);
    assert_eq!(
        created
            .ipv4_pools
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["B", "A"]
    );
    assert_eq!(created.mtu, 1300);
    assert_eq!(created.keepalive_secs, None);
    assert_eq!(created.gateway_dpd_secs, Some(30));
    assert_eq!(created.max_connect_time_minutes, Some(600));
    assert!(!created.dtls_enabled);
    assert_eq!(
        group_policies::get(&pool, GLOBAL_DOMAIN_ID, created.id)
            .await
            .unwrap(),
        created
    );

    input.ipv4_pool_ids = vec![a.id];
    input.mtu = 1406;
    let updated =
        group_policies::update(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &input)
            .await
            .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.ipv4_pools.len(), 1);
    assert_eq!(updated.mtu, 1406);

    // The pool is in use by the group policy: it cannot be deleted.
    let error = pools::delete_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, a.id, None)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::InUse { .. }), "{error}");

    group_policies::delete(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, Some(2))
        .await
        .unwrap();
    pools::delete_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, a.id, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_built_in_default_group_policy_exists_and_cannot_be_deleted_or_renamed() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    let default = group_policies::get(&pool, GLOBAL_DOMAIN_ID, DEFAULT_GROUP_POLICY_ID)
        .await
        .unwrap();
    assert_eq!(default.name, "DfltGrpPolicy");
    assert!(default.built_in);

    let error = group_policies::delete(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        DEFAULT_GROUP_POLICY_ID,
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::BuiltIn { .. }), "{error}");
    let error = group_policies::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        DEFAULT_GROUP_POLICY_ID,
        1,
        &GroupPolicyInput::new("Renamed"),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::BuiltIn { .. }), "{error}");

    let mut banner = GroupPolicyInput::new("DfltGrpPolicy");
    banner.banner = Some("Welcome".to_owned());
    let edited = group_policies::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        DEFAULT_GROUP_POLICY_ID,
        1,
        &banner,
    )
    .await
    .unwrap();
    assert_eq!(edited.banner.as_deref(), Some("Welcome"));
}

#[tokio::test]
async fn group_policy_stale_updates_conflicts_and_bad_values_change_nothing() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    let created = group_policies::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &GroupPolicyInput::new("GP"),
    )
    .await
    .unwrap();
    group_policies::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &GroupPolicyInput::new("Other"),
    )
    .await
    .unwrap();

    let mut changed = GroupPolicyInput::new("GP");
    changed.mtu = 1200;
    group_policies::update(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &changed)
        .await
        .unwrap();
    let error = group_policies::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        1,
        &GroupPolicyInput::new("GP"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, DbError::Stale { current: 2, .. }),
        "{error}"
    );

    let error = group_policies::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        2,
        &GroupPolicyInput::new("Other"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, DbError::Conflict { kind: ObjectKind::GroupPolicy, field, value } if field == "name" && value == "Other"),
        "{error}"
    );

    let mut bad = GroupPolicyInput::new("GP");
    bad.mtu = 9000;
    bad.ipv4_pool_ids = vec![];
    let error = group_policies::update(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 2, &bad)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::Invalid { .. }), "{error}");

    let mut missing_pool = GroupPolicyInput::new("GP");
    missing_pool.ipv4_pool_ids = vec![uuid::Uuid::new_v4()];
    let error = group_policies::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        2,
        &missing_pool,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            DbError::NotFound {
                kind: ObjectKind::Ipv4AddressPool,
                ..
            }
        ),
        "{error}"
    );

    let stored = group_policies::get(&pool, GLOBAL_DOMAIN_ID, created.id)
        .await
        .unwrap();
    assert_eq!((stored.version, stored.mtu), (2, 1200));
    assert_eq!(
        group_policies::list(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        3
    );
}
