//! Address pools (`object/ipv4addresspools`, `object/ipv6addresspools`) and their
//! per-device overrides: the rules of a range, checked once here for both doors, then the
//! repository write. A pool's own rules are vpn-core's (the ones the deployed document is
//! checked with); whether a pool may be overridden and whether a device already has an
//! override are checked by the repository inside the write's transaction.

use std::net::{Ipv4Addr, Ipv6Addr};

use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::{ConfigProblem, Ipv4Pool, Ipv6Pool, ObjectKind as CoreKind};

use super::acquire;
use crate::db::pool_overrides::{
    self, Ipv4PoolOverride, Ipv4PoolOverrideInput, Ipv6PoolOverride, Ipv6PoolOverrideInput,
};
use crate::db::pools::{
    self, Ipv4AddressPool, Ipv4AddressPoolInput, Ipv6AddressPool, Ipv6AddressPoolInput,
};
use crate::db::{Actor, DbError, Listed, ObjectKind, Page};
use crate::rules::{self, ChangeError, Problems};

/// FMC's largest IPv6 pool ("Number of Addresses": 1 to 16384).
pub const MAX_IPV6_POOL_ADDRESSES: u32 = 16_384;

/// A field of a pool or override a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    /// The IPv4 range, first to last.
    Ipv4Range,
    Mask,
    /// The IPv6 start address and prefix length.
    Ipv6Start,
    NumberOfAddresses,
}

impl rules::Field for Field {
    fn fmc_path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Ipv4Range => "ipAddressRange",
            Self::Mask => "mask",
            Self::Ipv6Start => "ipv6StartAddress",
            Self::NumberOfAddresses => "numberOfAddresses",
        }
    }
}

pub type PoolError = ChangeError<Field>;

/// The rules of an IPv4 range (a pool's or an override's).
pub fn check_ipv4_range(
    problems: &mut Problems<Field>,
    start: Ipv4Addr,
    end: Ipv4Addr,
    mask: Ipv4Addr,
) {
    let pool = Ipv4Pool {
        name: String::new(),
        start,
        end,
        mask,
    };
    add_core(problems, pool.problems(), |path| match path {
        "$.mask" => Field::Mask,
        _ => Field::Ipv4Range,
    });
}

/// The rules of an IPv6 range (a pool's or an override's).
pub fn check_ipv6_range(
    problems: &mut Problems<Field>,
    start: Ipv6Addr,
    prefix_length: u8,
    number_of_addresses: u32,
) {
    if number_of_addresses > MAX_IPV6_POOL_ADDRESSES {
        problems.add(
            Field::NumberOfAddresses,
            format!("{number_of_addresses} addresses: a pool has 1 to {MAX_IPV6_POOL_ADDRESSES}"),
        );
        return;
    }
    let pool = Ipv6Pool {
        name: String::new(),
        start,
        prefix_len: prefix_length,
        count: number_of_addresses,
    };
    add_core(problems, pool.problems(), |path| match path {
        "$.count" => Field::NumberOfAddresses,
        _ => Field::Ipv6Start,
    });
}

fn add_core(
    problems: &mut Problems<Field>,
    found: Vec<ConfigProblem>,
    field_of: impl Fn(&str) -> Field,
) {
    for problem in found {
        problems.add(field_of(&problem.path), problem.kind.to_string());
    }
}

/// Every rule an IPv4 pool breaks.
pub fn check_ipv4(input: &Ipv4AddressPoolInput) -> Problems<Field> {
    let mut problems = Problems::default();
    problems.check_object_name(Field::Name, CoreKind::Ipv4Pool, &input.name);
    check_ipv4_range(&mut problems, input.start, input.end, input.mask);
    problems
}

/// Every rule an IPv6 pool breaks.
pub fn check_ipv6(input: &Ipv6AddressPoolInput) -> Problems<Field> {
    let mut problems = Problems::default();
    problems.check_object_name(Field::Name, CoreKind::Ipv6Pool, &input.name);
    check_ipv6_range(
        &mut problems,
        input.start,
        input.prefix_length,
        input.number_of_addresses,
    );
    problems
}

// ---------------------------------------------------------------------------------
// IPv4 pools

pub async fn list_ipv4(
    pool: &PgPool,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<Ipv4AddressPool>, DbError> {
    pools::list_ipv4(pool, domain_id, page).await
}

pub async fn get_ipv4(
    pool: &PgPool,
    domain_id: Uuid,
    id: Uuid,
) -> Result<Ipv4AddressPool, DbError> {
    pools::get_ipv4(pool, domain_id, id).await
}

pub async fn create_ipv4(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    input: &Ipv4AddressPoolInput,
) -> Result<Ipv4AddressPool, PoolError> {
    check_ipv4(input).finish()?;
    let mut conn = acquire(pool).await?;
    Ok(pools::create_ipv4(&mut conn, actor, domain_id, input).await?)
}

pub async fn update_ipv4(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &Ipv4AddressPoolInput,
) -> Result<Ipv4AddressPool, PoolError> {
    check_ipv4(input).finish()?;
    let mut conn = acquire(pool).await?;
    Ok(pools::update_ipv4(&mut conn, actor, domain_id, id, expected_version, input).await?)
}

pub async fn delete_ipv4(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut conn = acquire(pool).await?;
    pools::delete_ipv4(&mut conn, actor, domain_id, id, expected_version).await
}

// ---------------------------------------------------------------------------------
// IPv6 pools

pub async fn list_ipv6(
    pool: &PgPool,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<Ipv6AddressPool>, DbError> {
    pools::list_ipv6(pool, domain_id, page).await
}

pub async fn get_ipv6(
    pool: &PgPool,
    domain_id: Uuid,
    id: Uuid,
) -> Result<Ipv6AddressPool, DbError> {
    pools::get_ipv6(pool, domain_id, id).await
}

pub async fn create_ipv6(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    input: &Ipv6AddressPoolInput,
) -> Result<Ipv6AddressPool, PoolError> {
    check_ipv6(input).finish()?;
    let mut conn = acquire(pool).await?;
    Ok(pools::create_ipv6(&mut conn, actor, domain_id, input).await?)
}

pub async fn update_ipv6(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &Ipv6AddressPoolInput,
) -> Result<Ipv6AddressPool, PoolError> {
    check_ipv6(input).finish()?;
    let mut conn = acquire(pool).await?;
    Ok(pools::update_ipv6(&mut conn, actor, domain_id, id, expected_version, input).await?)
}

pub async fn delete_ipv6(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut conn = acquire(pool).await?;
    pools::delete_ipv6(&mut conn, actor, domain_id, id, expected_version).await
}

// ---------------------------------------------------------------------------------
// Per-device overrides. An override is addressed under its pool: one of another pool is
// "not found" there.

fn not_found(kind: ObjectKind, id: Uuid) -> DbError {
    DbError::NotFound { kind, id }
}

pub async fn list_ipv4_overrides(
    pool: &PgPool,
    domain_id: Uuid,
    pool_id: Uuid,
    page: Page,
) -> Result<Listed<Ipv4PoolOverride>, DbError> {
    pool_overrides::list_ipv4(pool, domain_id, pool_id, page).await
}

pub async fn get_ipv4_override(
    pool: &PgPool,
    domain_id: Uuid,
    pool_id: Uuid,
    id: Uuid,
) -> Result<Ipv4PoolOverride, DbError> {
    let row = pool_overrides::get_ipv4(pool, domain_id, id).await?;
    if row.pool.id == pool_id {
        Ok(row)
    } else {
        Err(not_found(ObjectKind::Ipv4AddressPoolOverride, id))
    }
}

pub async fn create_ipv4_override(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    pool_id: Uuid,
    input: &Ipv4PoolOverrideInput,
) -> Result<Ipv4PoolOverride, PoolError> {
    let mut problems = Problems::default();
    check_ipv4_range(&mut problems, input.start, input.end, input.mask);
    problems.finish()?;
    let mut conn = acquire(pool).await?;
    Ok(pool_overrides::create_ipv4(&mut conn, actor, domain_id, pool_id, input).await?)
}

pub async fn update_ipv4_override(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    pool_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &Ipv4PoolOverrideInput,
) -> Result<Ipv4PoolOverride, PoolError> {
    get_ipv4_override(pool, domain_id, pool_id, id).await?;
    let mut problems = Problems::default();
    check_ipv4_range(&mut problems, input.start, input.end, input.mask);
    problems.finish()?;
    let mut conn = acquire(pool).await?;
    Ok(
        pool_overrides::update_ipv4(&mut conn, actor, domain_id, id, expected_version, input)
            .await?,
    )
}

pub async fn delete_ipv4_override(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    pool_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    get_ipv4_override(pool, domain_id, pool_id, id).await?;
    let mut conn = acquire(pool).await?;
    pool_overrides::delete_ipv4(&mut conn, actor, domain_id, id, expected_version).await
}

pub async fn list_ipv6_overrides(
    pool: &PgPool,
    domain_id: Uuid,
    pool_id: Uuid,
    page: Page,
) -> Result<Listed<Ipv6PoolOverride>, DbError> {
    pool_overrides::list_ipv6(pool, domain_id, pool_id, page).await
}

pub async fn get_ipv6_override(
    pool: &PgPool,
    domain_id: Uuid,
    pool_id: Uuid,
    id: Uuid,
) -> Result<Ipv6PoolOverride, DbError> {
    let row = pool_overrides::get_ipv6(pool, domain_id, id).await?;
    if row.pool.id == pool_id {
        Ok(row)
    } else {
        Err(not_found(ObjectKind::Ipv6AddressPoolOverride, id))
    }
}

pub async fn create_ipv6_override(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    pool_id: Uuid,
    input: &Ipv6PoolOverrideInput,
) -> Result<Ipv6PoolOverride, PoolError> {
    let mut problems = Problems::default();
    check_ipv6_range(
        &mut problems,
        input.start,
        input.prefix_length,
        input.number_of_addresses,
    );
    problems.finish()?;
    let mut conn = acquire(pool).await?;
    Ok(pool_overrides::create_ipv6(&mut conn, actor, domain_id, pool_id, input).await?)
}

pub async fn update_ipv6_override(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    pool_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &Ipv6PoolOverrideInput,
) -> Result<Ipv6PoolOverride, PoolError> {
    get_ipv6_override(pool, domain_id, pool_id, id).await?;
    let mut problems = Problems::default();
    check_ipv6_range(
        &mut problems,
        input.start,
        input.prefix_length,
        input.number_of_addresses,
    );
    problems.finish()?;
    let mut conn = acquire(pool).await?;
    Ok(
        pool_overrides::update_ipv6(&mut conn, actor, domain_id, id, expected_version, input)
            .await?,
    )
}

pub async fn delete_ipv6_override(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    pool_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    get_ipv6_override(pool, domain_id, pool_id, id).await?;
    let mut conn = acquire(pool).await?;
    pool_overrides::delete_ipv6(&mut conn, actor, domain_id, id, expected_version).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(problems: Problems<Field>) -> Vec<Field> {
        problems.into_vec().iter().map(|p| p.field).collect()
    }

    #[test]
    fn an_ipv4_pool_keeps_to_one_network_under_a_contiguous_mask() {
        let mut input = Ipv4AddressPoolInput {
            name: "VPN-POOL".into(),
            description: String::new(),
            start: Ipv4Addr::new(10, 0, 0, 10),
            end: Ipv4Addr::new(10, 0, 0, 20),
            mask: Ipv4Addr::new(255, 255, 255, 0),
            overridable: false,
        };
        assert!(fields(check_ipv4(&input)).is_empty());
        input.end = Ipv4Addr::new(10, 0, 1, 20);
        assert_eq!(fields(check_ipv4(&input)), [Field::Ipv4Range]);
        input.mask = Ipv4Addr::new(255, 0, 255, 0);
        input.name = "VPN POOL".into();
        assert_eq!(fields(check_ipv4(&input)), [Field::Name, Field::Mask]);
        input.start = Ipv4Addr::new(10, 0, 2, 0);
        assert!(fields(check_ipv4(&input)).contains(&Field::Ipv4Range));
    }

    #[test]
    fn an_ipv6_pool_has_1_to_16384_addresses_inside_its_prefix() {
        let mut input = Ipv6AddressPoolInput {
            name: "V6".into(),
            description: String::new(),
            start: "2001:db8::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
            prefix_length: 64,
            number_of_addresses: 16_384,
            overridable: false,
        };
        assert!(fields(check_ipv6(&input)).is_empty());
        input.number_of_addresses = 16_385;
        assert_eq!(fields(check_ipv6(&input)), [Field::NumberOfAddresses]);
        input.number_of_addresses = 0;
        assert_eq!(fields(check_ipv6(&input)), [Field::NumberOfAddresses]);
        input.number_of_addresses = 300;
        input.prefix_length = 120;
        assert_eq!(fields(check_ipv6(&input)), [Field::Ipv6Start]);
    }
}
