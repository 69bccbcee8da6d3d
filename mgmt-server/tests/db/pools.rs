use mgmt_server::db::pools::{self, Ipv4AddressPoolInput, Ipv6AddressPoolInput};
use mgmt_server::db::{DbError, GLOBAL_DOMAIN_ID, Page};

use crate::support;

fn v4(name: &str) -> Ipv4AddressPoolInput {
    Ipv4AddressPoolInput {
        name: name.to_owned(),
        description: "lab".to_owned(),
        start: "10.10.0.10".parse().unwrap(),
        end: "10.10.0.200".parse().unwrap(),
        mask: "255.255.255.0".parse().unwrap(),
        overridable: false,
    }
}

fn v6(name: &str) -> Ipv6AddressPoolInput {
    Ipv6AddressPoolInput {
        name: name.to_owned(),
        description: String::new(),
        start: "2001:db8::10".parse().unwrap(),
        prefix_length: 64,
        number_of_addresses: 100,
        overridable: true,
    }
}

#[tokio::test]
async fn ipv4_pools_are_created_read_listed_updated_and_deleted() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();

    let created = pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &v4("VPN-POOL"))
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.start.to_string(), "10.10.0.10");
    assert_eq!(
        pools::get_ipv4(&pool, GLOBAL_DOMAIN_ID, created.id)
            .await
            .unwrap(),
        created
    );

    let mut changed = v4("VPN-POOL-2");
    changed.end = "10.10.0.50".parse().unwrap();
    let updated = pools::update_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &changed)
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.name, "VPN-POOL-2");
    assert_eq!(updated.end.to_string(), "10.10.0.50");

    let listed = pools::list_ipv4(&pool, GLOBAL_DOMAIN_ID, Page::DEFAULT)
        .await
        .unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.items, vec![updated.clone()]);

    pools::delete_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, Some(2))
        .await
        .unwrap();
    assert!(matches!(
        pools::get_ipv4(&pool, GLOBAL_DOMAIN_ID, created.id).await,
        Err(DbError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_stale_pool_update_is_refused_and_changes_nothing() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    let created = pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &v4("A"))
        .await
        .unwrap();
    pools::update_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &v4("B"))
        .await
        .unwrap();

    let error = pools::update_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &v4("C"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DbError::Stale {
                expected: 1,
                current: 2,
                ..
            }
        ),
        "{error}"
    );
    let stored = pools::get_ipv4(&pool, GLOBAL_DOMAIN_ID, created.id)
        .await
        .unwrap();
    assert_eq!(stored.name, "B");
    assert_eq!(stored.version, 2);

    let error = pools::delete_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, Some(1))
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::Stale { .. }), "{error}");
    assert!(
        pools::get_ipv4(&pool, GLOBAL_DOMAIN_ID, created.id)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_second_pool_with_the_same_name_is_a_conflict() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &v4("SAME"))
        .await
        .unwrap();
    let error = pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &v4("SAME"))
        .await
        .unwrap_err();
    match error {
        DbError::Conflict { field, value, .. } => {
            assert_eq!(field, "name");
            assert_eq!(value, "SAME");
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(
        pools::list_ipv4(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        1
    );
}

#[tokio::test]
async fn a_pool_whose_range_runs_backwards_is_invalid() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let mut backwards = v4("BACK");
    backwards.start = "10.0.0.9".parse().unwrap();
    backwards.end = "10.0.0.1".parse().unwrap();
    let error = pools::create_ipv4(&mut conn, &support::admin(), GLOBAL_DOMAIN_ID, &backwards)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DbError::Invalid { constraint, .. } if constraint == "ipv4_address_pools_range_ordered"),
        "{error}"
    );
}

#[tokio::test]
async fn ipv6_pools_are_created_updated_and_deleted() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    let created = pools::create_ipv6(&mut conn, &admin, GLOBAL_DOMAIN_ID, &v6("V6"))
        .await
        .unwrap();
    assert_eq!(created.prefix_length, 64);
    assert_eq!(created.number_of_addresses, 100);
    let mut changed = v6("V6");
    changed.number_of_addresses = 500;
    let updated = pools::update_ipv6(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &changed)
        .await
        .unwrap();
    assert_eq!(updated.number_of_addresses, 500);
    assert!(matches!(
        pools::update_ipv6(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &v6("X")).await,
        Err(DbError::Stale { .. })
    ));
    pools::delete_ipv6(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, None)
        .await
        .unwrap();
    assert_eq!(
        pools::list_ipv6(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn of_two_concurrent_updates_from_the_same_version_exactly_one_is_written() {
    let pool = support::fresh_database().await;
    let admin = support::admin();
    let created = pools::create_ipv4(
        &mut pool.acquire().await.unwrap(),
        &admin,
        GLOBAL_DOMAIN_ID,
        &v4("RACE"),
    )
    .await
    .unwrap();
    let mut first_conn = pool.acquire().await.unwrap();
    let mut second_conn = pool.acquire().await.unwrap();
    let (first_input, second_input) = (v4("FIRST"), v4("SECOND"));
    let (first, second) = tokio::join!(
        pools::update_ipv4(
            &mut first_conn,
            &admin,
            GLOBAL_DOMAIN_ID,
            created.id,
            1,
            &first_input
        ),
        pools::update_ipv4(
            &mut second_conn,
            &admin,
            GLOBAL_DOMAIN_ID,
            created.id,
            1,
            &second_input
        ),
    );
    let (winner, loser) = match (first, second) {
        (Ok(winner), Err(loser)) | (Err(loser), Ok(winner)) => (winner, loser),
        (first, second) => {
            panic!("expected one success and one stale error, got {first:?} and {second:?}")
        }
    };
    assert!(
        matches!(
            loser,
            DbError::Stale {
                expected: 1,
                current: 2,
                ..
            }
        ),
        "{loser}"
    );
    let stored = pools::get_ipv4(&pool, GLOBAL_DOMAIN_ID, created.id)
        .await
        .unwrap();
    assert_eq!(stored, winner);
    assert_eq!(stored.version, 2);
}
