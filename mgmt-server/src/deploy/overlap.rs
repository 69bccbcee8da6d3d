//! No two devices hand out the same client address. A deploy is refused when a device
//! in it would hand out addresses that another device of the domain also hands out:
//! another device of the same deploy, or what another device runs (its last deployed
//! configuration) or is about to run (a queued or running deploy). Pools with the same
//! name on two devices are fine as long as their ranges differ: that is what per-device
//! pool overrides are for.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::{DeviceConfig, Ipv4Pool, Ipv6Pool};

use crate::db::{DbError, EncryptionKey, address_claims, device_policy};

/// A range of addresses, first and last included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRange {
    V4 { first: Ipv4Addr, last: Ipv4Addr },
    V6 { first: Ipv6Addr, last: Ipv6Addr },
}

impl AddressRange {
    pub fn of_ipv4(pool: &Ipv4Pool) -> Self {
        Self::V4 {
            first: pool.start,
            last: pool.end,
        }
    }

    /// `count` addresses from `start` (cut at the end of the address space).
    pub fn of_ipv6(pool: &Ipv6Pool) -> Self {
        let first = u128::from(pool.start);
        let last = first.saturating_add(u128::from(pool.count.max(1)) - 1);
        Self::V6 {
            first: pool.start,
            last: Ipv6Addr::from(last),
        }
    }

    /// The addresses both ranges hold, if any.
    pub fn intersection(&self, other: &Self) -> Option<Self> {
        match (*self, *other) {
            (Self::V4 { first: a, last: b }, Self::V4 { first: c, last: d }) => {
                let (first, last) = (a.max(c), b.min(d));
                (first <= last).then_some(Self::V4 { first, last })
            }
            (Self::V6 { first: a, last: b }, Self::V6 { first: c, last: d }) => {
                let (first, last) = (a.max(c), b.min(d));
                (first <= last).then_some(Self::V6 { first, last })
            }
            _ => None,
        }
    }

    fn bounds(&self) -> (IpAddr, IpAddr) {
        match *self {
            Self::V4 { first, last } => (first.into(), last.into()),
            Self::V6 { first, last } => (first.into(), last.into()),
        }
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (first, last) = self.bounds();
        if first == last {
            write!(f, "{first}")
        } else {
            write!(f, "{first}-{last}")
        }
    }
}

/// One pool one device hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressClaim {
    pub device_id: Uuid,
    pub device: String,
    pub pool: String,
    pub range: AddressRange,
    /// Where the claim comes from: "this deploy", "deployed version 3", "queued version 4".
    pub origin: String,
}

impl AddressClaim {
    /// The pools of one device's configuration.
    pub fn of_pools(
        device_id: Uuid,
        device: &str,
        origin: &str,
        ipv4_pools: &[Ipv4Pool],
        ipv6_pools: &[Ipv6Pool],
    ) -> Vec<Self> {
        let claim = |pool: &str, range| Self {
            device_id,
            device: device.to_owned(),
            pool: pool.to_owned(),
            range,
            origin: origin.to_owned(),
        };
        ipv4_pools
            .iter()
            .map(|p| claim(&p.name, AddressRange::of_ipv4(p)))
            .chain(
                ipv6_pools
                    .iter()
                    .map(|p| claim(&p.name, AddressRange::of_ipv6(p))),
            )
            .collect()
    }
}

/// Two devices that would hand out the same addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "devices {} and {} would both hand out {}: {} pool {} is {} ({}), {} pool {} is {} ({}); override the pool for one of them",
    .first.device, .second.device, .shared,
    .first.device, .first.pool, .first.range, .first.origin,
    .second.device, .second.pool, .second.range, .second.origin
)]
pub struct Overlap {
    pub first: AddressClaim,
    pub second: AddressClaim,
    pub shared: AddressRange,
}

/// Every pair of claims of two different devices whose ranges overlap, in the order
/// of `claims`.
pub fn find_overlaps(claims: &[AddressClaim]) -> Vec<Overlap> {
    let mut overlaps = Vec::new();
    for (i, first) in claims.iter().enumerate() {
        for second in &claims[i + 1..] {
            if first.device_id == second.device_id {
                continue;
            }
            if let Some(shared) = first.range.intersection(&second.range) {
                overlaps.push(Overlap {
                    first: first.clone(),
                    second: second.clone(),
                    shared,
                });
            }
        }
    }
    overlaps
}

/// What the other devices of the domain (all but `except`) run or are about to run.
pub async fn claims_of_others(
    pool: &PgPool,
    domain_id: Uuid,
    except: &[Uuid],
) -> Result<Vec<AddressClaim>, DbError> {
    let deployed = address_claims::deployed_or_pending(pool, domain_id, except).await?;
    Ok(deployed
        .iter()
        .flat_map(|d| {
            let origin = match d.status.as_str() {
                "DEPLOYED" => format!("deployed version {}", d.config_version),
                other => format!("{} version {}", other.to_lowercase(), d.config_version),
            };
            AddressClaim::of_pools(
                d.device_id,
                &d.device_name,
                &origin,
                &d.ipv4_pools,
                &d.ipv6_pools,
            )
        })
        .collect())
}

/// Refuses (the first overlap) when `device_ids`, deployed together now, would hand
/// out addresses that one another or any other device of the domain hands out. Loads
/// each device's policy; a deploy request that has already compiled its documents calls
/// [`check_configs`] instead.
pub async fn check(
    pool: &PgPool,
    key: &EncryptionKey,
    domain_id: Uuid,
    device_ids: &[Uuid],
) -> Result<(), super::CompileError> {
    let mut planned = Vec::new();
    for &device_id in device_ids {
        if let Some(inputs) = device_policy::load(pool, domain_id, device_id, key).await? {
            let config = super::compile::device_config(&inputs, 0);
            planned.push((device_id, inputs.device.name.clone(), config));
        }
    }
    check_configs(
        pool,
        domain_id,
        planned
            .iter()
            .map(|(id, name, config)| (*id, name.as_str(), config)),
    )
    .await
}

/// Refuses (the first overlap) when the documents about to be deployed, one per device,
/// would hand out addresses that one another or any other device of the domain hands
/// out (what it runs or is about to run).
pub async fn check_configs<'a>(
    pool: &PgPool,
    domain_id: Uuid,
    planned: impl Iterator<Item = (Uuid, &'a str, &'a DeviceConfig)>,
) -> Result<(), super::CompileError> {
    let mut claims = Vec::new();
    let mut device_ids = Vec::new();
    for (device_id, device, config) in planned {
        device_ids.push(device_id);
        claims.extend(AddressClaim::of_pools(
            device_id,
            device,
            "this deploy",
            &config.ipv4_pools,
            &config.ipv6_pools,
        ));
    }
    claims.extend(claims_of_others(pool, domain_id, &device_ids).await?);
    match find_overlaps(&claims).into_iter().next() {
        Some(overlap) => Err(super::CompileError::Overlap(Box::new(overlap))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(device: u128, name: &str, first: &str, last: &str) -> AddressClaim {
        AddressClaim {
            device_id: Uuid::from_u128(device),
            device: format!("ftd-{device}"),
            pool: name.to_owned(),
            range: AddressRange::V4 {
                first: first.parse().unwrap(),
                last: last.parse().unwrap(),
            },
            origin: "this deploy".to_owned(),
        }
    }

    fn v6(device: u128, start: &str, count: u32) -> AddressClaim {
        AddressClaim::of_pools(
            Uuid::from_u128(device),
            &format!("ftd-{device}"),
            "this deploy",
            &[],
            &[Ipv6Pool {
                name: "V6".to_owned(),
                start: start.parse().unwrap(),
                prefix_len: 64,
                count,
            }],
        )
        .remove(0)
    }

    #[test]
    fn two_devices_with_the_same_pool_range_overlap_on_the_whole_range() {
        let claims = [
            v4(1, "VPN", "10.0.0.10", "10.0.0.50"),
            v4(2, "VPN", "10.0.0.10", "10.0.0.50"),
        ];
        let overlaps = find_overlaps(&claims);
        assert_eq!(overlaps.len(), 1);
        assert_eq!(overlaps[0].shared.to_string(), "10.0.0.10-10.0.0.50");
        let message = overlaps[0].to_string();
        assert!(message.contains("ftd-1"), "{message}");
        assert!(message.contains("ftd-2"), "{message}");
        assert!(message.contains("pool VPN"), "{message}");
    }

    #[test]
    fn partly_overlapping_ranges_report_only_the_shared_addresses() {
        let claims = [
            v4(1, "A", "10.0.0.10", "10.0.0.50"),
            v4(2, "B", "10.0.0.40", "10.0.0.90"),
        ];
        assert_eq!(
            find_overlaps(&claims)[0].shared.to_string(),
            "10.0.0.40-10.0.0.50"
        );
    }

    #[test]
    fn ranges_that_touch_without_sharing_an_address_do_not_overlap() {
        let claims = [
            v4(1, "A", "10.0.0.10", "10.0.0.49"),
            v4(2, "A", "10.0.0.50", "10.0.0.90"),
        ];
        assert!(find_overlaps(&claims).is_empty());
    }

    #[test]
    fn one_device_may_hand_out_the_same_range_from_two_of_its_pools() {
        let claims = [
            v4(1, "A", "10.0.0.10", "10.0.0.50"),
            v4(1, "B", "10.0.0.10", "10.0.0.50"),
        ];
        assert!(find_overlaps(&claims).is_empty());
    }

    #[test]
    fn a_single_shared_address_is_an_overlap() {
        let claims = [
            v4(1, "A", "10.0.0.10", "10.0.0.50"),
            v4(2, "A", "10.0.0.50", "10.0.0.90"),
        ];
        assert_eq!(find_overlaps(&claims)[0].shared.to_string(), "10.0.0.50");
    }

    #[test]
    fn ipv6_pools_overlap_by_start_and_count() {
        let a = v6(1, "2001:db8::100", 256);
        let b = v6(2, "2001:db8::1ff", 10);
        let c = v6(3, "2001:db8::209", 10);
        let overlaps = find_overlaps(&[a, b, c]);
        assert_eq!(overlaps.len(), 1);
        assert_eq!(overlaps[0].first.device, "ftd-1");
        assert_eq!(overlaps[0].second.device, "ftd-2");
        assert_eq!(overlaps[0].shared.to_string(), "2001:db8::1ff");
    }

    #[test]
    fn ipv4_and_ipv6_ranges_never_overlap() {
        let claims = [v4(1, "A", "0.0.0.0", "255.255.255.255"), v6(2, "::", 100)];
        assert!(find_overlaps(&claims).is_empty());
    }

    #[test]
    fn an_ipv6_pool_at_the_end_of_the_address_space_stops_there() {
        let claim = v6(1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0", 1000);
        assert_eq!(
            claim.range.to_string(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
    }
}
