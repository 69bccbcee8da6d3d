//! [`Ipv6PoolAllocator`]: addresses of one `ipv6 local pool NAME START/PREFIX COUNT`.

use std::net::{IpAddr, Ipv6Addr};

use super::slots::Slots;
use super::{MAX_POOL_ADDRESSES, PoolError};
use crate::config::Ipv6Pool;

/// Hands out the `count` addresses from `start` on, lowest free address first.
///
/// All of them must lie inside `start`'s /`prefix_len` prefix. The subnet-router anycast
/// address of the prefix (interface identifier all zeros, RFC 4291) is never handed out;
/// with a /127 or /128 prefix there is none (RFC 6164).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6PoolAllocator {
    pool: Ipv6Pool,
    first: u128,
    /// Whether the first address is the subnet-router anycast address.
    first_reserved: bool,
    slots: Slots,
}

impl Ipv6PoolAllocator {
    /// Checks the pool (prefix length at most 128, 1 to [`MAX_POOL_ADDRESSES`]
    /// addresses, all inside the prefix, at least one usable) and starts with every
    /// address free.
    pub fn new(pool: &Ipv6Pool) -> Result<Ipv6PoolAllocator, PoolError> {
        if pool.prefix_len > 128 {
            return Err(PoolError::InvalidPrefixLength {
                pool: pool.name.clone(),
                prefix_len: pool.prefix_len,
            });
        }
        if pool.count == 0 {
            return Err(PoolError::EmptyPool {
                pool: pool.name.clone(),
            });
        }
        if pool.count > MAX_POOL_ADDRESSES {
            return Err(PoolError::TooLarge {
                pool: pool.name.clone(),
                size: u128::from(pool.count),
                limit: MAX_POOL_ADDRESSES,
            });
        }
        let first = u128::from(pool.start);
        let host_bits = u128::MAX
            .checked_shr(u32::from(pool.prefix_len))
            .unwrap_or(0);
        let last_host = (first & host_bits) + u128::from(pool.count - 1);
        if last_host > host_bits {
            return Err(PoolError::LeavesPrefix {
                pool: pool.name.clone(),
                start: pool.start,
                prefix_len: pool.prefix_len,
                count: pool.count,
            });
        }
        let first_reserved = pool.prefix_len < 127 && first & host_bits == 0;
        let slots = Slots::new(pool.count, first_reserved.then_some(0));
        if slots.capacity() == 0 {
            return Err(PoolError::NoUsableAddress {
                pool: pool.name.clone(),
            });
        }
        Ok(Ipv6PoolAllocator {
            pool: pool.clone(),
            first,
            first_reserved,
            slots,
        })
    }

    /// A new allocator for `new_pool` that keeps every address `old` handed out and
    /// `new_pool` can still hold; returns it with the addresses that no longer fit.
    pub fn rebuild_from(
        old: &Ipv6PoolAllocator,
        new_pool: &Ipv6Pool,
    ) -> Result<(Ipv6PoolAllocator, Vec<Ipv6Addr>), PoolError> {
        let mut new = Ipv6PoolAllocator::new(new_pool)?;
        let orphans = old
            .allocated()
            .filter(|address| new.allocate_specific(*address).is_err())
            .collect();
        Ok((new, orphans))
    }

    /// The pool this allocator was built from.
    pub fn pool(&self) -> &Ipv6Pool {
        &self.pool
    }

    pub fn name(&self) -> &str {
        &self.pool.name
    }

    /// The prefix length to announce with an address of this pool
    /// (`X-CSTP-Address-IP6: addr/len`).
    pub fn prefix_len(&self) -> u8 {
        self.pool.prefix_len
    }

    /// Hands out the lowest free address.
    pub fn allocate(&mut self) -> Result<Ipv6Addr, PoolError> {
        self.slots
            .take_lowest()
            .map(|slot| self.address(slot))
            .ok_or_else(|| PoolError::Exhausted {
                pool: self.pool.name.clone(),
            })
    }

    /// Hands out `address` itself, e.g. to a client reconnecting with its previous one.
    pub fn allocate_specific(&mut self, address: Ipv6Addr) -> Result<(), PoolError> {
        let slot = self.usable_slot(address)?;
        if self.slots.take(slot) {
            Ok(())
        } else {
            Err(PoolError::InUse {
                pool: self.pool.name.clone(),
                address: IpAddr::V6(address),
            })
        }
    }

    /// Takes `address` back; false if it was not handed out (a double release is
    /// harmless).
    pub fn release(&mut self, address: Ipv6Addr) -> bool {
        self.usable_slot(address)
            .is_ok_and(|slot| self.slots.give_back(slot))
    }

    pub fn is_allocated(&self, address: Ipv6Addr) -> bool {
        self.usable_slot(address)
            .is_ok_and(|slot| self.slots.is_taken(slot))
    }

    /// True if `address` is one of the `count` addresses from `start` (reserved included).
    pub fn contains(&self, address: Ipv6Addr) -> bool {
        self.slot(address).is_some()
    }

    /// True for the subnet-router anycast address, which is never handed out.
    pub fn is_reserved(&self, address: Ipv6Addr) -> bool {
        self.first_reserved && u128::from(address) == self.first
    }

    /// Addresses handed out now.
    pub fn in_use(&self) -> usize {
        self.slots.in_use() as usize
    }

    /// Addresses this pool can hand out at most.
    pub fn capacity(&self) -> usize {
        self.slots.capacity() as usize
    }

    /// Every address handed out, in increasing order.
    pub fn allocated(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.slots
            .taken()
            .filter(|slot| !(self.first_reserved && *slot == 0))
            .map(|slot| self.address(slot))
    }

    fn slot(&self, address: Ipv6Addr) -> Option<u32> {
        u128::from(address)
            .checked_sub(self.first)
            .and_then(|offset| u32::try_from(offset).ok())
            .filter(|slot| *slot < self.slots.len())
    }

    fn usable_slot(&self, address: Ipv6Addr) -> Result<u32, PoolError> {
        let slot = self.slot(address).ok_or_else(|| PoolError::NotInPool {
            pool: self.pool.name.clone(),
            address: IpAddr::V6(address),
        })?;
        if self.is_reserved(address) {
            return Err(PoolError::ReservedAddress {
                pool: self.pool.name.clone(),
                address: IpAddr::V6(address),
            });
        }
        Ok(slot)
    }

    fn address(&self, slot: u32) -> Ipv6Addr {
        // The whole range was checked to lie inside the prefix: no overflow.
        Ipv6Addr::from(self.first.saturating_add(u128::from(slot)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn pool(start: &str, prefix_len: u8, count: u32) -> Ipv6Pool {
        Ipv6Pool {
            name: "v6pool".into(),
            start: start.parse().unwrap(),
            prefix_len,
            count,
        }
    }

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn hands_out_count_addresses_from_start_lowest_first() {
        let mut a = Ipv6PoolAllocator::new(&pool("2001:db8:1::1", 64, 250)).unwrap();
        assert_eq!(a.capacity(), 250);
        assert_eq!(a.prefix_len(), 64);
        assert_eq!(a.allocate(), Ok(ip("2001:db8:1::1")));
        assert_eq!(a.allocate(), Ok(ip("2001:db8:1::2")));
        assert!(a.release(ip("2001:db8:1::1")));
        assert!(!a.release(ip("2001:db8:1::1")));
        assert_eq!(a.allocate(), Ok(ip("2001:db8:1::1")));
        assert!(a.contains(ip("2001:db8:1::fa")));
        assert!(!a.contains(ip("2001:db8:1::fb")));
        for _ in 2..250 {
            a.allocate().unwrap();
        }
        assert_eq!(
            a.allocate(),
            Err(PoolError::Exhausted {
                pool: "v6pool".into()
            })
        );
    }

    #[test]
    fn subnet_router_anycast_address_is_never_handed_out() {
        let mut a = Ipv6PoolAllocator::new(&pool("2001:db8::", 64, 3)).unwrap();
        assert_eq!(a.capacity(), 2);
        assert!(a.is_reserved(ip("2001:db8::")));
        assert_eq!(a.allocate(), Ok(ip("2001:db8::1")));
        assert_eq!(
            a.allocate_specific(ip("2001:db8::")),
            Err(PoolError::ReservedAddress {
                pool: "v6pool".into(),
                address: IpAddr::V6(ip("2001:db8::"))
            })
        );
        assert!(!a.release(ip("2001:db8::")));
        assert_eq!(a.allocated().collect::<Vec<_>>(), [ip("2001:db8::1")]);
        // A /127 has no anycast address.
        assert_eq!(
            Ipv6PoolAllocator::new(&pool("2001:db8::", 127, 2))
                .unwrap()
                .capacity(),
            2
        );
    }

    #[test]
    fn invalid_pools_are_refused_with_the_reason() {
        assert_eq!(
            Ipv6PoolAllocator::new(&pool("2001:db8::1", 129, 1)),
            Err(PoolError::InvalidPrefixLength {
                pool: "v6pool".into(),
                prefix_len: 129
            })
        );
        assert_eq!(
            Ipv6PoolAllocator::new(&pool("2001:db8::1", 64, 0)),
            Err(PoolError::EmptyPool {
                pool: "v6pool".into()
            })
        );
        assert_eq!(
            Ipv6PoolAllocator::new(&pool("2001:db8::ff", 120, 2)),
            Err(PoolError::LeavesPrefix {
                pool: "v6pool".into(),
                start: ip("2001:db8::ff"),
                prefix_len: 120,
                count: 2
            })
        );
        assert_eq!(
            Ipv6PoolAllocator::new(&pool("2001:db8::", 64, 1)),
            Err(PoolError::NoUsableAddress {
                pool: "v6pool".into()
            })
        );
        assert!(Ipv6PoolAllocator::new(&pool("2001:db8::fe", 120, 2)).is_ok());
        assert!(Ipv6PoolAllocator::new(&pool("::ffff", 0, 1)).is_ok());
        assert!(Ipv6PoolAllocator::new(&pool("2001:db8::5", 128, 1)).is_ok());
        assert!(Ipv6PoolAllocator::new(&pool("2001:db8::5", 128, 2)).is_err());
    }

    #[test]
    fn pool_size_limit_is_enforced() {
        let a = Ipv6PoolAllocator::new(&pool("2001:db8::1", 64, MAX_POOL_ADDRESSES)).unwrap();
        assert_eq!(a.capacity(), MAX_POOL_ADDRESSES as usize);
        assert_eq!(
            Ipv6PoolAllocator::new(&pool("2001:db8::1", 64, MAX_POOL_ADDRESSES + 1)),
            Err(PoolError::TooLarge {
                pool: "v6pool".into(),
                size: u128::from(MAX_POOL_ADDRESSES) + 1,
                limit: MAX_POOL_ADDRESSES
            })
        );
    }

    #[test]
    fn reconnecting_client_gets_its_previous_address_back() {
        let mut a = Ipv6PoolAllocator::new(&pool("2001:db8:1::1", 64, 250)).unwrap();
        assert_eq!(a.allocate_specific(ip("2001:db8:1::20")), Ok(()));
        assert!(a.is_allocated(ip("2001:db8:1::20")));
        assert!(matches!(
            a.allocate_specific(ip("2001:db8:1::20")),
            Err(PoolError::InUse { .. })
        ));
        assert!(matches!(
            a.allocate_specific(ip("2001:db8:2::20")),
            Err(PoolError::NotInPool { .. })
        ));
    }

    #[test]
    fn rebuild_keeps_addresses_that_still_fit_and_returns_the_others() {
        let mut old = Ipv6PoolAllocator::new(&pool("2001:db8::1", 64, 100)).unwrap();
        for _ in 0..10 {
            old.allocate().unwrap();
        }
        let (new, orphans) =
            Ipv6PoolAllocator::rebuild_from(&old, &pool("2001:db8::5", 64, 100)).unwrap();
        assert_eq!(
            orphans,
            [
                ip("2001:db8::1"),
                ip("2001:db8::2"),
                ip("2001:db8::3"),
                ip("2001:db8::4")
            ]
        );
        assert_eq!(new.in_use(), 6);
    }

    proptest! {
        #[test]
        fn random_allocate_release_matches_a_model(
            low in 0u128..8,
            count in 1u32..300,
            ops in prop::collection::vec((0u8..4, any::<u16>()), 0..400),
        ) {
            let base = u128::from(ip("2001:db8::")) + low;
            let Ok(mut a) = Ipv6PoolAllocator::new(&Ipv6Pool {
                name: "p".into(),
                start: Ipv6Addr::from(base),
                prefix_len: 64,
                count,
            }) else {
                prop_assert!(low == 0 && count == 1);
                return Ok(());
            };
            let mut model = HashSet::new();
            for (op, pick) in ops {
                let candidate = Ipv6Addr::from(base + u128::from(pick) % (u128::from(count) + 3));
                match op {
                    0 | 1 => match a.allocate() {
                        Ok(address) => {
                            prop_assert!(a.contains(address) && !a.is_reserved(address));
                            prop_assert!(model.insert(address), "{} handed out twice", address);
                        }
                        Err(_) => prop_assert_eq!(model.len(), a.capacity()),
                    },
                    2 => {
                        let ok = a.allocate_specific(candidate).is_ok();
                        let expected = a.contains(candidate)
                            && !a.is_reserved(candidate)
                            && !model.contains(&candidate);
                        prop_assert_eq!(ok, expected);
                        if ok {
                            model.insert(candidate);
                        }
                    }
                    _ => prop_assert_eq!(a.release(candidate), model.remove(&candidate)),
                }
                prop_assert_eq!(a.in_use(), model.len());
                prop_assert_eq!(a.is_allocated(candidate), model.contains(&candidate));
            }
        }
    }
}
