//! Address pools: ranges, masks, sizes and overlaps.
//!
//! A pool holds at most [`MAX_POOL_ADDRESSES`] addresses (IPv4 and IPv6 alike): the
//! sensor's allocator keeps per-address state, and a /16 is far more than one headend
//! serves. Overlaps are found by sorting ranges, so a large document stays linear-ish.

use super::{Findings, ProblemKind};
use crate::config::{DeviceConfig, Ipv4Pool, Ipv6Pool};

/// The most addresses one pool may hold.
pub const MAX_POOL_ADDRESSES: u32 = 65_536;

pub(super) fn check(config: &DeviceConfig, found: &mut Findings) {
    let mut v4_ranges = Vec::new();
    for (i, pool) in config.ipv4_pools.iter().enumerate() {
        if let Some(range) = check_ipv4(pool, &format!("$.ipv4_pools[{i}]"), found) {
            v4_ranges.push(Range {
                first: range.0,
                last: range.1,
                index: i,
            });
        }
    }
    report_overlaps(
        v4_ranges,
        |i| config.ipv4_pools.get(i).map(|p| p.name.as_str()),
        "ipv4_pools",
        found,
    );

    let mut v6_ranges = Vec::new();
    for (i, pool) in config.ipv6_pools.iter().enumerate() {
        if let Some(range) = check_ipv6(pool, &format!("$.ipv6_pools[{i}]"), found) {
            v6_ranges.push(Range {
                first: range.0,
                last: range.1,
                index: i,
            });
        }
    }
    report_overlaps(
        v6_ranges,
        |i| config.ipv6_pools.get(i).map(|p| p.name.as_str()),
        "ipv6_pools",
        found,
    );
}

/// Inclusive address range of pool number `index`.
impl Ipv4Pool {
    /// What makes this one pool unusable on its own (overlaps with other pools are the
    /// document's concern): paths are `$` for the range and `$.mask` for the mask.
    pub fn problems(&self) -> Vec<super::ConfigProblem> {
        let mut found = Findings::default();
        check_ipv4(self, "$", &mut found);
        found.problems
    }
}

impl Ipv6Pool {
    /// What makes this one pool unusable on its own: paths are `$`, `$.prefix_len` and
    /// `$.count`.
    pub fn problems(&self) -> Vec<super::ConfigProblem> {
        let mut found = Findings::default();
        check_ipv6(self, "$", &mut found);
        found.problems
    }
}

struct Range {
    first: u128,
    last: u128,
    index: usize,
}

/// Checks one IPv4 pool; returns its range when it has a usable one.
fn check_ipv4(pool: &Ipv4Pool, at: &str, found: &mut Findings) -> Option<(u128, u128)> {
    let (start, end, mask) = (
        u32::from(pool.start),
        u32::from(pool.end),
        u32::from(pool.mask),
    );
    let mask_ok = crate::pool::is_contiguous_netmask(pool.mask);
    if !mask_ok {
        found.push(
            format!("{at}.mask"),
            ProblemKind::NonContiguousMask { mask: pool.mask },
        );
    }
    if start > end {
        found.push(
            at,
            ProblemKind::PoolStartAfterEnd {
                start: pool.start,
                end: pool.end,
            },
        );
        return None;
    }
    if mask_ok && start & mask != end & mask {
        let (start, end, mask) = (pool.start, pool.end, pool.mask);
        found.push(at, ProblemKind::PoolSpansSubnets { start, end, mask });
    }
    let addresses = u128::from(end - start) + 1;
    if addresses > u128::from(MAX_POOL_ADDRESSES) {
        found.push(
            at,
            ProblemKind::PoolTooLarge {
                addresses,
                max: MAX_POOL_ADDRESSES,
            },
        );
    }
    Some((u128::from(start), u128::from(end)))
}

/// Checks one IPv6 pool; returns its range when it has a usable one.
fn check_ipv6(pool: &Ipv6Pool, at: &str, found: &mut Findings) -> Option<(u128, u128)> {
    let mut usable = true;
    if pool.prefix_len > 128 {
        let prefix_len = pool.prefix_len;
        found.push(
            format!("{at}.prefix_len"),
            ProblemKind::Ipv6PrefixTooLong { prefix_len },
        );
        usable = false;
    }
    if pool.count == 0 {
        found.push(format!("{at}.count"), ProblemKind::EmptyIpv6Pool);
        return None;
    }
    if pool.count > MAX_POOL_ADDRESSES {
        let addresses = u128::from(pool.count);
        found.push(
            at,
            ProblemKind::PoolTooLarge {
                addresses,
                max: MAX_POOL_ADDRESSES,
            },
        );
    }
    let first = u128::from(pool.start);
    let last = first.checked_add(u128::from(pool.count) - 1);
    let inside = usable && last.is_some_and(|last| same_prefix(first, last, pool.prefix_len));
    if usable && !inside {
        let (start, prefix_len, count) = (pool.start, pool.prefix_len, pool.count);
        found.push(
            at,
            ProblemKind::Ipv6PoolOutsidePrefix {
                start,
                prefix_len,
                count,
            },
        );
    }
    last.map(|last| (first, last))
}

/// Whether two addresses share their first `prefix_len` (≤ 128) bits.
fn same_prefix(a: u128, b: u128, prefix_len: u8) -> bool {
    let host_bits = 128 - u32::from(prefix_len);
    a.checked_shr(host_bits).unwrap_or(0) == b.checked_shr(host_bits).unwrap_or(0)
}

/// Reports each pool whose range meets an earlier-starting one, naming that pool. The
/// problem goes on whichever of the two comes later in the document.
fn report_overlaps<'a>(
    mut ranges: Vec<Range>,
    name_of: impl Fn(usize) -> Option<&'a str>,
    list: &str,
    found: &mut Findings,
) {
    ranges.sort_by_key(|r| (r.first, r.index));
    let mut reach: Option<&Range> = None;
    for range in &ranges {
        match reach {
            Some(widest) if range.first <= widest.last => {
                let (later, earlier) = if range.index > widest.index {
                    (range.index, widest.index)
                } else {
                    (widest.index, range.index)
                };
                let other = name_of(earlier).unwrap_or_default().to_owned();
                found.push(
                    format!("$.{list}[{later}]"),
                    ProblemKind::PoolsOverlap { other },
                );
                if range.last > widest.last {
                    reach = Some(range);
                }
            }
            _ => reach = Some(range),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn addresses_share_a_prefix_only_within_it() {
        let a = u128::from("2001:db8::1".parse::<Ipv6Addr>().unwrap());
        let b = u128::from("2001:db8::ffff".parse::<Ipv6Addr>().unwrap());
        let c = u128::from("2001:db9::1".parse::<Ipv6Addr>().unwrap());
        assert!(same_prefix(a, b, 64));
        assert!(same_prefix(a, b, 112));
        assert!(!same_prefix(a, b, 120));
        assert!(!same_prefix(a, c, 32));
        assert!(same_prefix(a, c, 0));
        assert!(same_prefix(a, a, 128));
    }

    proptest! {
        #[test]
        fn any_pool_values_are_checked_without_panicking(
            v4 in proptest::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..8),
            v6 in proptest::collection::vec((any::<u128>(), any::<u8>(), any::<u32>()), 0..8),
        ) {
            let mut config = crate::config::fixture::seed_config();
            config.ipv4_pools = v4.into_iter().enumerate().map(|(i, (start, end, mask))| Ipv4Pool {
                name: format!("v4-{i}"),
                start: Ipv4Addr::from(start),
                end: Ipv4Addr::from(end),
                mask: Ipv4Addr::from(mask),
            }).collect();
            config.ipv6_pools = v6.into_iter().enumerate().map(|(i, (start, prefix_len, count))| Ipv6Pool {
                name: format!("v6-{i}"),
                start: Ipv6Addr::from(start),
                prefix_len,
                count,
            }).collect();
            let mut found = Findings::default();
            check(&config, &mut found);
            for problem in &found.problems {
                prop_assert!(problem.path.starts_with("$.ipv"), "{}", problem);
            }
        }
    }
}

#[cfg(test)]
mod single_pool_tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use crate::config::{Ipv4Pool, Ipv6Pool, ProblemKind};

    #[test]
    fn one_pool_is_checked_alone_with_the_documents_rules() {
        let pool = Ipv4Pool {
            name: "P".into(),
            start: Ipv4Addr::new(10, 0, 0, 200),
            end: Ipv4Addr::new(10, 0, 1, 10),
            mask: Ipv4Addr::new(255, 255, 0, 255),
        };
        let problems = pool.problems();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["$.mask"], "{problems:?}");
        let pool = Ipv4Pool {
            mask: Ipv4Addr::new(255, 255, 255, 0),
            ..pool
        };
        assert!(matches!(
            pool.problems()[0].kind,
            ProblemKind::PoolSpansSubnets { .. }
        ));
        let v6 = Ipv6Pool {
            name: "P6".into(),
            start: Ipv6Addr::LOCALHOST,
            prefix_len: 64,
            count: 0,
        };
        assert_eq!(v6.problems()[0].path, "$.count");
    }
}
