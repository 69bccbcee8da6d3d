//! [`Ipv4PoolAllocator`]: addresses of one `ip local pool NAME START-END mask MASK`.

use std::net::{IpAddr, Ipv4Addr};

use super::slots::Slots;
use super::{MAX_POOL_ADDRESSES, PoolError};
use crate::config::Ipv4Pool;

/// Hands out the addresses of one IPv4 pool, lowest free address first.
///
/// The network and broadcast addresses of the mask's subnets (every subnet the range
/// touches) are never handed out; with a /31 or /32 mask there are none (RFC 3021).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4PoolAllocator {
    pool: Ipv4Pool,
    first: u32,
    /// The host bits of the mask (`!mask`).
    host_bits: u32,
    /// Whether network and broadcast addresses exist (prefix of /30 or shorter).
    has_edges: bool,
    slots: Slots,
}

impl Ipv4PoolAllocator {
    /// Checks the pool (start not after end, contiguous mask, at most
    /// [`MAX_POOL_ADDRESSES`] addresses, at least one usable) and starts with every
    /// address free.
    pub fn new(pool: &Ipv4Pool) -> Result<Ipv4PoolAllocator, PoolError> {
        let first = u32::from(pool.start);
        let last = u32::from(pool.end);
        if first > last {
            return Err(PoolError::StartAfterEnd {
                pool: pool.name.clone(),
                start: pool.start,
                end: pool.end,
            });
        }
        let mask = u32::from(pool.mask);
        if !super::is_contiguous_netmask(pool.mask) {
            return Err(PoolError::NonContiguousMask {
                pool: pool.name.clone(),
                mask: pool.mask,
            });
        }
        let size = u64::from(last - first) + 1;
        let len = u32::try_from(size)
            .ok()
            .filter(|len| *len <= MAX_POOL_ADDRESSES)
            .ok_or_else(|| PoolError::TooLarge {
                pool: pool.name.clone(),
                size: u128::from(size),
                limit: MAX_POOL_ADDRESSES,
            })?;
        let host_bits = !mask;
        let has_edges = mask.leading_ones() <= 30;
        let reserved = if has_edges {
            subnet_edges(first, last, host_bits)
        } else {
            Vec::new()
        };
        let slots = Slots::new(len, reserved);
        if slots.capacity() == 0 {
            return Err(PoolError::NoUsableAddress {
                pool: pool.name.clone(),
            });
        }
        Ok(Ipv4PoolAllocator {
            pool: pool.clone(),
            first,
            host_bits,
            has_edges,
            slots,
        })
    }

    /// A new allocator for `new_pool` that keeps every address `old` handed out and
    /// `new_pool` can still hold; returns it with the addresses that no longer fit
    /// (outside the new range, or now a network/broadcast address).
    pub fn rebuild_from(
        old: &Ipv4PoolAllocator,
        new_pool: &Ipv4Pool,
    ) -> Result<(Ipv4PoolAllocator, Vec<Ipv4Addr>), PoolError> {
        let mut new = Ipv4PoolAllocator::new(new_pool)?;
        let orphans = old
            .allocated()
            .filter(|address| new.allocate_specific(*address).is_err())
            .collect();
        Ok((new, orphans))
    }

    /// The pool this allocator was built from.
    pub fn pool(&self) -> &Ipv4Pool {
        &self.pool
    }

    pub fn name(&self) -> &str {
        &self.pool.name
    }

    /// Hands out the lowest free address.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, PoolError> {
        self.slots
            .take_lowest()
            .map(|slot| self.address(slot))
            .ok_or_else(|| PoolError::Exhausted {
                pool: self.pool.name.clone(),
            })
    }

    /// Hands out `address` itself, e.g. to a client reconnecting with its previous one.
    pub fn allocate_specific(&mut self, address: Ipv4Addr) -> Result<(), PoolError> {
        let slot = self.usable_slot(address)?;
        if self.slots.take(slot) {
            Ok(())
        } else {
            Err(PoolError::InUse {
                pool: self.pool.name.clone(),
                address: IpAddr::V4(address),
            })
        }
    }

    /// Takes `address` back; false if it was not handed out (a double release is
    /// harmless).
    pub fn release(&mut self, address: Ipv4Addr) -> bool {
        self.usable_slot(address)
            .is_ok_and(|slot| self.slots.give_back(slot))
    }

    pub fn is_allocated(&self, address: Ipv4Addr) -> bool {
        self.usable_slot(address)
            .is_ok_and(|slot| self.slots.is_taken(slot))
    }

    /// True if `address` lies in the range START-END (network and broadcast included).
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        self.slot(address).is_some()
    }

    /// True for a network or broadcast address of the mask, which is never handed out.
    pub fn is_reserved(&self, address: Ipv4Addr) -> bool {
        let bits = u32::from(address) & self.host_bits;
        self.has_edges && (bits == 0 || bits == self.host_bits)
    }

    /// Addresses handed out now.
    pub fn in_use(&self) -> usize {
        self.slots.in_use() as usize
    }

    /// Addresses this pool can hand out at most (range minus network/broadcast).
    pub fn capacity(&self) -> usize {
        self.slots.capacity() as usize
    }

    /// Every address handed out, in increasing order.
    pub fn allocated(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.slots
            .taken()
            .map(|slot| self.address(slot))
            .filter(|address| !self.is_reserved(*address))
    }

    fn slot(&self, address: Ipv4Addr) -> Option<u32> {
        u32::from(address)
            .checked_sub(self.first)
            .filter(|slot| *slot < self.slots.len())
    }

    fn usable_slot(&self, address: Ipv4Addr) -> Result<u32, PoolError> {
        let slot = self.slot(address).ok_or_else(|| PoolError::NotInPool {
            pool: self.pool.name.clone(),
            address: IpAddr::V4(address),
        })?;
        if self.is_reserved(address) {
            return Err(PoolError::ReservedAddress {
                pool: self.pool.name.clone(),
                address: IpAddr::V4(address),
            });
        }
        Ok(slot)
    }

    fn address(&self, slot: u32) -> Ipv4Addr {
        // slot < len, and first + len - 1 = end, so this cannot overflow.
        Ipv4Addr::from(self.first.saturating_add(slot))
    }
}

/// Offsets (from `first`) of every network and broadcast address in `first..=last`.
fn subnet_edges(first: u32, last: u32, host_bits: u32) -> Vec<u32> {
    let mut edges = Vec::new();
    let mut network = first & !host_bits;
    loop {
        let broadcast = network | host_bits;
        for edge in [network, broadcast] {
            if (first..=last).contains(&edge) {
                edges.push(edge - first);
            }
        }
        match broadcast.checked_add(1) {
            Some(next) if next <= last => network = next,
            _ => return edges,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn pool(start: &str, end: &str, mask: &str) -> Ipv4Pool {
        Ipv4Pool {
            name: "AC_Pool".into(),
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
            mask: mask.parse().unwrap(),
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn hands_out_the_lowest_free_address_first() {
        let mut a =
            Ipv4PoolAllocator::new(&pool("10.99.0.1", "10.99.0.254", "255.255.255.0")).unwrap();
        assert_eq!(a.capacity(), 254);
        assert_eq!(a.allocate(), Ok(ip("10.99.0.1")));
        assert_eq!(a.allocate(), Ok(ip("10.99.0.2")));
        assert_eq!(a.allocate(), Ok(ip("10.99.0.3")));
        assert!(a.release(ip("10.99.0.2")));
        assert_eq!(a.allocate(), Ok(ip("10.99.0.2")));
        assert_eq!(a.in_use(), 3);
        assert_eq!(
            a.allocated().collect::<Vec<_>>(),
            [ip("10.99.0.1"), ip("10.99.0.2"), ip("10.99.0.3")]
        );
    }

    #[test]
    fn network_and_broadcast_addresses_are_never_handed_out() {
        let mut a =
            Ipv4PoolAllocator::new(&pool("10.0.0.0", "10.0.1.255", "255.255.255.0")).unwrap();
        assert_eq!(a.capacity(), 512 - 4);
        let mut given = HashSet::new();
        while let Ok(address) = a.allocate() {
            given.insert(address);
        }
        assert_eq!(given.len(), 508);
        for edge in ["10.0.0.0", "10.0.0.255", "10.0.1.0", "10.0.1.255"] {
            assert!(!given.contains(&ip(edge)), "{edge} handed out");
            assert!(a.contains(ip(edge)));
            assert!(a.is_reserved(ip(edge)));
            assert!(!a.is_allocated(ip(edge)));
            assert!(!a.release(ip(edge)));
        }
        assert_eq!(
            a.allocate_specific(ip("10.0.0.255")),
            Err(PoolError::ReservedAddress {
                pool: "AC_Pool".into(),
                address: IpAddr::V4(ip("10.0.0.255"))
            })
        );
    }

    #[test]
    fn slash_31_and_slash_32_masks_have_no_network_or_broadcast() {
        let a = Ipv4PoolAllocator::new(&pool("10.0.0.0", "10.0.0.1", "255.255.255.254")).unwrap();
        assert_eq!(a.capacity(), 2);
        let a = Ipv4PoolAllocator::new(&pool("10.0.0.7", "10.0.0.7", "255.255.255.255")).unwrap();
        assert_eq!(a.capacity(), 1);
    }

    #[test]
    fn invalid_pools_are_refused_with_the_reason() {
        assert_eq!(
            Ipv4PoolAllocator::new(&pool("10.0.0.9", "10.0.0.1", "255.255.255.0")),
            Err(PoolError::StartAfterEnd {
                pool: "AC_Pool".into(),
                start: ip("10.0.0.9"),
                end: ip("10.0.0.1")
            })
        );
        assert_eq!(
            Ipv4PoolAllocator::new(&pool("10.0.0.1", "10.0.0.9", "255.0.255.0")),
            Err(PoolError::NonContiguousMask {
                pool: "AC_Pool".into(),
                mask: ip("255.0.255.0")
            })
        );
        assert_eq!(
            Ipv4PoolAllocator::new(&pool("10.0.0.255", "10.0.1.0", "255.255.255.0")),
            Err(PoolError::NoUsableAddress {
                pool: "AC_Pool".into()
            })
        );
    }

    #[test]
    fn pool_size_limit_is_enforced() {
        let at_limit = pool("10.0.0.0", "10.15.255.255", "255.240.0.0");
        assert_eq!(
            Ipv4PoolAllocator::new(&at_limit).unwrap().capacity(),
            (MAX_POOL_ADDRESSES - 2) as usize
        );
        assert_eq!(
            Ipv4PoolAllocator::new(&pool("10.0.0.0", "10.16.0.0", "255.0.0.0")),
            Err(PoolError::TooLarge {
                pool: "AC_Pool".into(),
                size: u128::from(MAX_POOL_ADDRESSES) + 1,
                limit: MAX_POOL_ADDRESSES
            })
        );
        assert!(matches!(
            Ipv4PoolAllocator::new(&pool("0.0.0.0", "255.255.255.255", "0.0.0.0")),
            Err(PoolError::TooLarge {
                size: 4_294_967_296,
                ..
            })
        ));
    }

    #[test]
    fn all_65536_addresses_of_a_slash_16_sized_range_are_handed_out_then_exhausted() {
        // A /16-sized range inside 10.0.0.0/8: its network and broadcast lie outside.
        let mut a = Ipv4PoolAllocator::new(&pool("10.1.0.0", "10.1.255.255", "255.0.0.0")).unwrap();
        assert_eq!(a.capacity(), 65_536);
        for i in 0..65_536u32 {
            assert_eq!(a.allocate(), Ok(Ipv4Addr::from(0x0a01_0000 + i)));
        }
        assert_eq!(
            a.allocate(),
            Err(PoolError::Exhausted {
                pool: "AC_Pool".into()
            })
        );
        assert_eq!(a.in_use(), 65_536);
        for address in ["10.1.200.7", "10.1.0.0", "10.1.255.255"] {
            assert!(a.release(ip(address)));
        }
        assert_eq!(a.allocate(), Ok(ip("10.1.0.0")));
        assert_eq!(a.allocate(), Ok(ip("10.1.200.7")));
        assert_eq!(a.allocate(), Ok(ip("10.1.255.255")));
        assert!(a.allocate().is_err());
        for i in 0..65_536u32 {
            assert!(a.release(Ipv4Addr::from(0x0a01_0000 + i)));
        }
        assert_eq!(a.in_use(), 0);
        assert_eq!(a.allocate(), Ok(ip("10.1.0.0")));
    }

    #[test]
    fn reconnecting_client_gets_its_previous_address_back() {
        let mut a =
            Ipv4PoolAllocator::new(&pool("10.99.0.1", "10.99.0.254", "255.255.255.0")).unwrap();
        assert_eq!(a.allocate_specific(ip("10.99.0.77")), Ok(()));
        assert!(a.is_allocated(ip("10.99.0.77")));
        assert_eq!(
            a.allocate_specific(ip("10.99.0.77")),
            Err(PoolError::InUse {
                pool: "AC_Pool".into(),
                address: IpAddr::V4(ip("10.99.0.77"))
            })
        );
        assert_eq!(
            a.allocate_specific(ip("10.98.0.77")),
            Err(PoolError::NotInPool {
                pool: "AC_Pool".into(),
                address: IpAddr::V4(ip("10.98.0.77"))
            })
        );
        assert_eq!(a.allocate(), Ok(ip("10.99.0.1")));
    }

    #[test]
    fn double_release_is_reported_and_harmless() {
        let mut a =
            Ipv4PoolAllocator::new(&pool("10.99.0.1", "10.99.0.9", "255.255.255.0")).unwrap();
        let address = a.allocate().unwrap();
        assert!(a.release(address));
        assert!(!a.release(address));
        assert!(!a.release(ip("192.0.2.1")));
        assert_eq!(a.in_use(), 0);
    }

    #[test]
    fn rebuild_keeps_addresses_that_still_fit_and_returns_the_others() {
        let mut old =
            Ipv4PoolAllocator::new(&pool("10.99.0.1", "10.99.0.20", "255.255.255.0")).unwrap();
        for address in ["10.99.0.3", "10.99.0.10", "10.99.0.15"] {
            old.allocate_specific(ip(address)).unwrap();
        }
        let (mut new, orphans) = Ipv4PoolAllocator::rebuild_from(
            &old,
            &pool("10.99.0.8", "10.99.0.15", "255.255.255.248"),
        )
        .unwrap();
        // 10.99.0.3 left the range; 10.99.0.15 is now the broadcast of 10.99.0.8/29.
        assert_eq!(orphans, [ip("10.99.0.3"), ip("10.99.0.15")]);
        assert_eq!(new.allocated().collect::<Vec<_>>(), [ip("10.99.0.10")]);
        assert_eq!(new.allocate(), Ok(ip("10.99.0.9")));
        assert_eq!(new.allocate(), Ok(ip("10.99.0.11")));
    }

    proptest! {
        #[test]
        fn random_allocate_release_matches_a_model(
            start in 0u32..1024,
            len in 1u32..600,
            prefix in 20u32..=32,
            ops in prop::collection::vec((0u8..4, any::<u16>()), 0..400),
        ) {
            let base = 0x0a00_0000 + start;
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            let config = Ipv4Pool {
                name: "p".into(),
                start: Ipv4Addr::from(base),
                end: Ipv4Addr::from(base + len - 1),
                mask: Ipv4Addr::from(mask),
            };
            let Ok(mut a) = Ipv4PoolAllocator::new(&config) else {
                // Only a range made of network/broadcast addresses is refused.
                prop_assert!(len <= 2 && prefix <= 30);
                return Ok(());
            };
            let mut model = HashSet::new();
            for (op, pick) in ops {
                let candidate = Ipv4Addr::from(base - 2 + u32::from(pick) % (len + 4));
                match op {
                    0 | 1 => match a.allocate() {
                        Ok(address) => {
                            prop_assert!(a.contains(address) && !a.is_reserved(address));
                            prop_assert!(model.insert(address), "{} handed out twice", address);
                            let lowest = (base..base + len)
                                .map(Ipv4Addr::from)
                                .find(|x| !a.is_reserved(*x) && !model.contains(x) || *x == address);
                            prop_assert_eq!(lowest, Some(address));
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
            let mut listed: Vec<_> = model.into_iter().collect();
            listed.sort();
            prop_assert_eq!(a.allocated().collect::<Vec<_>>(), listed);
        }
    }
}
