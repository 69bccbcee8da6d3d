//! [`PoolSet`]: every address pool of a device, by name, kept across redeploys.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Ipv4PoolAllocator, Ipv6PoolAllocator, PoolError};
use crate::config::{DeviceConfig, Ipv4Pool, Ipv6Pool};

/// All IPv4 and IPv6 pools of a device.
///
/// Pools are device-wide and shared by every connection profile that names them, so a
/// profile allocates with its ordered list of pool names: the first pool with a free
/// address wins. Pools of one family must not overlap (otherwise one address could be
/// handed out twice); release finds the owning pool by address.
///
/// On a redeploy, [`reconcile`](Self::reconcile) keeps every allocator whose pool is
/// unchanged and carries over the addresses of changed or removed pools wherever they
/// still fit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSet {
    ipv4: Family<Ipv4PoolAllocator>,
    ipv6: Family<Ipv6PoolAllocator>,
}

/// What a [`PoolSet::reconcile`] could not carry over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Addresses in use that no pool of the new configuration can hold; nothing tracks
    /// them any more, so their sessions should end.
    pub orphaned_ipv4: Vec<Ipv4Addr>,
    pub orphaned_ipv6: Vec<Ipv6Addr>,
}

impl PoolSet {
    /// Builds every pool; refuses invalid, duplicate or overlapping pools.
    pub fn new(ipv4: &[Ipv4Pool], ipv6: &[Ipv6Pool]) -> Result<PoolSet, PoolError> {
        let mut set = PoolSet::default();
        set.reconcile(ipv4, ipv6)?;
        Ok(set)
    }

    /// The pools of a device configuration.
    pub fn from_device_config(config: &DeviceConfig) -> Result<PoolSet, PoolError> {
        PoolSet::new(&config.ipv4_pools, &config.ipv6_pools)
    }

    /// Switches to a new pool configuration, all or nothing: on error nothing changes.
    ///
    /// Unchanged pools (same name, same definition) keep their allocator as is. Addresses
    /// of changed or removed pools stay allocated in whichever new pool contains them;
    /// those that fit nowhere are returned.
    pub fn reconcile(
        &mut self,
        ipv4: &[Ipv4Pool],
        ipv6: &[Ipv6Pool],
    ) -> Result<Reconciliation, PoolError> {
        let ipv4_plan = self.ipv4.plan(ipv4)?;
        let ipv6_plan = self.ipv6.plan(ipv6)?;
        Ok(Reconciliation {
            orphaned_ipv4: self.ipv4.commit(ipv4_plan),
            orphaned_ipv6: self.ipv6.commit(ipv6_plan),
        })
    }

    /// The IPv4 pools, in configuration order.
    pub fn ipv4_pools(&self) -> &[Ipv4PoolAllocator] {
        &self.ipv4.pools
    }

    /// The IPv6 pools, in configuration order.
    pub fn ipv6_pools(&self) -> &[Ipv6PoolAllocator] {
        &self.ipv6.pools
    }

    pub fn ipv4_pool(&self, name: &str) -> Option<&Ipv4PoolAllocator> {
        self.ipv4.find(name)
    }

    pub fn ipv6_pool(&self, name: &str) -> Option<&Ipv6PoolAllocator> {
        self.ipv6.find(name)
    }

    /// An address from the first of `pool_names` that has one free.
    pub fn allocate_ipv4<S: AsRef<str>>(
        &mut self,
        pool_names: &[S],
    ) -> Result<Ipv4Addr, PoolError> {
        self.ipv4.allocate(pool_names)
    }

    /// An address from the first of `pool_names` that has one free.
    pub fn allocate_ipv6<S: AsRef<str>>(
        &mut self,
        pool_names: &[S],
    ) -> Result<Ipv6Addr, PoolError> {
        self.ipv6.allocate(pool_names)
    }

    /// Hands out `address` itself if it belongs to one of `pool_names` and is free
    /// (a reconnecting client asking for its previous address).
    pub fn allocate_specific_ipv4<S: AsRef<str>>(
        &mut self,
        pool_names: &[S],
        address: Ipv4Addr,
    ) -> Result<(), PoolError> {
        self.ipv4.allocate_specific(pool_names, address)
    }

    /// Hands out `address` itself if it belongs to one of `pool_names` and is free.
    pub fn allocate_specific_ipv6<S: AsRef<str>>(
        &mut self,
        pool_names: &[S],
        address: Ipv6Addr,
    ) -> Result<(), PoolError> {
        self.ipv6.allocate_specific(pool_names, address)
    }

    /// Takes `address` back into its pool; false if no pool had handed it out.
    pub fn release_ipv4(&mut self, address: Ipv4Addr) -> bool {
        self.ipv4.release(address)
    }

    /// Takes `address` back into its pool; false if no pool had handed it out.
    pub fn release_ipv6(&mut self, address: Ipv6Addr) -> bool {
        self.ipv6.release(address)
    }

    /// Name of the pool whose range contains `address`.
    pub fn ipv4_owner(&self, address: Ipv4Addr) -> Option<&str> {
        self.ipv4.owner(address).map(Allocator::name_str)
    }

    /// Name of the pool whose range contains `address`.
    pub fn ipv6_owner(&self, address: Ipv6Addr) -> Option<&str> {
        self.ipv6.owner(address).map(Allocator::name_str)
    }
}

/// What [`Family`] needs of an allocator; implemented by both address families.
trait Allocator: Sized {
    type Address: Copy + Into<IpAddr>;
    type Config: PartialEq;

    fn build(config: &Self::Config) -> Result<Self, PoolError>;
    fn config_name(config: &Self::Config) -> &str;
    fn config(&self) -> &Self::Config;
    fn name_str(&self) -> &str;
    /// First and last address of the range, as numbers.
    fn span(&self) -> (u128, u128);
    fn has(&self, address: Self::Address) -> bool;
    fn take_lowest(&mut self) -> Result<Self::Address, PoolError>;
    fn take(&mut self, address: Self::Address) -> Result<(), PoolError>;
    fn give_back(&mut self, address: Self::Address) -> bool;
    fn handed_out(&self) -> Vec<Self::Address>;
}

impl Allocator for Ipv4PoolAllocator {
    type Address = Ipv4Addr;
    type Config = Ipv4Pool;

    fn build(config: &Ipv4Pool) -> Result<Self, PoolError> {
        Ipv4PoolAllocator::new(config)
    }
    fn config_name(config: &Ipv4Pool) -> &str {
        &config.name
    }
    fn config(&self) -> &Ipv4Pool {
        self.pool()
    }
    fn name_str(&self) -> &str {
        self.name()
    }
    fn span(&self) -> (u128, u128) {
        (
            u128::from(u32::from(self.pool().start)),
            u128::from(u32::from(self.pool().end)),
        )
    }
    fn has(&self, address: Ipv4Addr) -> bool {
        self.contains(address)
    }
    fn take_lowest(&mut self) -> Result<Ipv4Addr, PoolError> {
        self.allocate()
    }
    fn take(&mut self, address: Ipv4Addr) -> Result<(), PoolError> {
        self.allocate_specific(address)
    }
    fn give_back(&mut self, address: Ipv4Addr) -> bool {
        self.release(address)
    }
    fn handed_out(&self) -> Vec<Ipv4Addr> {
        self.allocated().collect()
    }
}

impl Allocator for Ipv6PoolAllocator {
    type Address = Ipv6Addr;
    type Config = Ipv6Pool;

    fn build(config: &Ipv6Pool) -> Result<Self, PoolError> {
        Ipv6PoolAllocator::new(config)
    }
    fn config_name(config: &Ipv6Pool) -> &str {
        &config.name
    }
    fn config(&self) -> &Ipv6Pool {
        self.pool()
    }
    fn name_str(&self) -> &str {
        self.name()
    }
    fn span(&self) -> (u128, u128) {
        let first = u128::from(self.pool().start);
        (
            first,
            first.saturating_add(u128::from(self.pool().count.saturating_sub(1))),
        )
    }
    fn has(&self, address: Ipv6Addr) -> bool {
        self.contains(address)
    }
    fn take_lowest(&mut self) -> Result<Ipv6Addr, PoolError> {
        self.allocate()
    }
    fn take(&mut self, address: Ipv6Addr) -> Result<(), PoolError> {
        self.allocate_specific(address)
    }
    fn give_back(&mut self, address: Ipv6Addr) -> bool {
        self.release(address)
    }
    fn handed_out(&self) -> Vec<Ipv6Addr> {
        self.allocated().collect()
    }
}

/// The pools of one address family, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Family<A> {
    pools: Vec<A>,
}

impl<A> Default for Family<A> {
    fn default() -> Self {
        Family { pools: Vec::new() }
    }
}

/// A checked new configuration of a [`Family`], not yet applied.
enum Planned<A> {
    /// The pool at this index of the current list is unchanged.
    Keep(usize),
    /// A new or changed pool, built afresh.
    Fresh(A),
}

impl<A: Allocator> Family<A> {
    fn find(&self, name: &str) -> Option<&A> {
        self.pools.iter().find(|a| a.name_str() == name)
    }

    fn owner(&self, address: A::Address) -> Option<&A> {
        self.pools.iter().find(|a| a.has(address))
    }

    /// Indices of `names` in `self.pools`, in the order given.
    fn resolve<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<usize>, PoolError> {
        if names.is_empty() {
            return Err(PoolError::NoPoolAssigned);
        }
        names
            .iter()
            .map(|name| {
                let name = name.as_ref();
                self.pools
                    .iter()
                    .position(|a| a.name_str() == name)
                    .ok_or_else(|| PoolError::UnknownPool { name: name.into() })
            })
            .collect()
    }

    fn allocate<S: AsRef<str>>(&mut self, names: &[S]) -> Result<A::Address, PoolError> {
        for index in self.resolve(names)? {
            if let Some(Ok(address)) = self.pools.get_mut(index).map(A::take_lowest) {
                return Ok(address);
            }
        }
        Err(PoolError::AllExhausted {
            pools: names.iter().map(|n| n.as_ref().to_owned()).collect(),
        })
    }

    fn allocate_specific<S: AsRef<str>>(
        &mut self,
        names: &[S],
        address: A::Address,
    ) -> Result<(), PoolError> {
        let indices = self.resolve(names)?;
        let owner = indices
            .into_iter()
            .find(|index| self.pools.get(*index).is_some_and(|a| a.has(address)));
        match owner.and_then(|index| self.pools.get_mut(index)) {
            Some(pool) => pool.take(address),
            None => Err(PoolError::NotInAssignedPools {
                pools: names.iter().map(|n| n.as_ref().to_owned()).collect(),
                address: address.into(),
            }),
        }
    }

    fn release(&mut self, address: A::Address) -> bool {
        self.pools
            .iter_mut()
            .find(|a| a.has(address))
            .is_some_and(|a| a.give_back(address))
    }

    /// Checks `configs` and builds what changed, without touching the current pools.
    fn plan(&self, configs: &[A::Config]) -> Result<Vec<Planned<A>>, PoolError> {
        let mut plan = Vec::with_capacity(configs.len());
        for (i, config) in configs.iter().enumerate() {
            let name = A::config_name(config);
            if configs
                .iter()
                .take(i)
                .any(|earlier| A::config_name(earlier) == name)
            {
                return Err(PoolError::DuplicatePool { name: name.into() });
            }
            let unchanged = self
                .pools
                .iter()
                .position(|a| a.name_str() == name && a.config() == config);
            plan.push(match unchanged {
                Some(index) => Planned::Keep(index),
                None => Planned::Fresh(A::build(config)?),
            });
        }
        let pools: Vec<&A> = plan
            .iter()
            .filter_map(|p| match p {
                Planned::Keep(index) => self.pools.get(*index),
                Planned::Fresh(a) => Some(a),
            })
            .collect();
        for (i, first) in pools.iter().enumerate() {
            for second in pools.iter().skip(i + 1) {
                let (a0, a1) = first.span();
                let (b0, b1) = second.span();
                if a0 <= b1 && b0 <= a1 {
                    return Err(PoolError::OverlappingPools {
                        first: first.name_str().into(),
                        second: second.name_str().into(),
                    });
                }
            }
        }
        Ok(plan)
    }

    /// Applies a plan; returns the addresses in use that no new pool can hold.
    fn commit(&mut self, plan: Vec<Planned<A>>) -> Vec<A::Address> {
        let mut old: Vec<Option<A>> = std::mem::take(&mut self.pools)
            .into_iter()
            .map(Some)
            .collect();
        self.pools = plan
            .into_iter()
            .filter_map(|p| match p {
                // Names are unique, so each kept index is taken once.
                Planned::Keep(index) => old.get_mut(index).and_then(Option::take),
                Planned::Fresh(a) => Some(a),
            })
            .collect();
        let mut orphans = Vec::new();
        for address in old.iter().flatten().flat_map(A::handed_out) {
            let placed = self
                .pools
                .iter_mut()
                .find(|a| a.has(address))
                .is_some_and(|a| a.take(address).is_ok());
            if !placed {
                orphans.push(address);
            }
        }
        orphans
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn v4(name: &str, start: &str, end: &str) -> Ipv4Pool {
        Ipv4Pool {
            name: name.into(),
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
            mask: "255.255.255.0".parse().unwrap(),
        }
    }

    fn v6(name: &str, start: &str, count: u32) -> Ipv6Pool {
        Ipv6Pool {
            name: name.into(),
            start: start.parse().unwrap(),
            prefix_len: 64,
            count,
        }
    }

    fn ip4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn ip6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn two_pools() -> PoolSet {
        PoolSet::new(
            &[
                v4("A", "10.0.0.1", "10.0.0.2"),
                v4("B", "10.0.1.1", "10.0.1.3"),
            ],
            &[v6("V6", "2001:db8::1", 2)],
        )
        .unwrap()
    }

    #[test]
    fn first_pool_of_the_profile_with_a_free_address_wins() {
        let mut set = two_pools();
        let profile = ["A", "B"];
        assert_eq!(set.allocate_ipv4(&profile), Ok(ip4("10.0.0.1")));
        assert_eq!(set.allocate_ipv4(&profile), Ok(ip4("10.0.0.2")));
        assert_eq!(set.allocate_ipv4(&profile), Ok(ip4("10.0.1.1")));
        assert!(set.release_ipv4(ip4("10.0.0.2")));
        assert_eq!(set.allocate_ipv4(&profile), Ok(ip4("10.0.0.2")));
        // Another profile lists the pools the other way round.
        assert_eq!(set.allocate_ipv4(&["B", "A"]), Ok(ip4("10.0.1.2")));
        assert_eq!(set.allocate_ipv4(&["B", "A"]), Ok(ip4("10.0.1.3")));
        assert_eq!(
            set.allocate_ipv4(&profile),
            Err(PoolError::AllExhausted {
                pools: vec!["A".into(), "B".into()]
            })
        );
        assert_eq!(set.allocate_ipv6(&["V6"]), Ok(ip6("2001:db8::1")));
    }

    #[test]
    fn unknown_or_missing_pools_are_errors() {
        let mut set = two_pools();
        assert_eq!(
            set.allocate_ipv4(&["A", "nope"]),
            Err(PoolError::UnknownPool {
                name: "nope".into()
            })
        );
        assert_eq!(
            set.allocate_ipv4::<&str>(&[]),
            Err(PoolError::NoPoolAssigned)
        );
        assert_eq!(
            set.allocate_ipv6(&["A"]),
            Err(PoolError::UnknownPool { name: "A".into() })
        );
        assert_eq!(set.ipv4_pool("A").unwrap().in_use(), 0, "nothing taken");
    }

    #[test]
    fn release_finds_the_owning_pool() {
        let mut set = two_pools();
        let address = set.allocate_ipv4(&["B"]).unwrap();
        assert_eq!(set.ipv4_owner(address), Some("B"));
        assert_eq!(set.ipv4_owner(ip4("192.0.2.1")), None);
        assert!(set.release_ipv4(address));
        assert!(!set.release_ipv4(address));
        assert!(!set.release_ipv4(ip4("192.0.2.1")));
        let address = set.allocate_ipv6(&["V6"]).unwrap();
        assert_eq!(set.ipv6_owner(address), Some("V6"));
        assert!(set.release_ipv6(address));
        assert!(!set.release_ipv6(address));
    }

    #[test]
    fn reconnect_gets_its_address_only_from_the_profiles_pools() {
        let mut set = two_pools();
        assert_eq!(
            set.allocate_specific_ipv4(&["A", "B"], ip4("10.0.1.2")),
            Ok(())
        );
        assert_eq!(
            set.allocate_specific_ipv4(&["A"], ip4("10.0.1.3")),
            Err(PoolError::NotInAssignedPools {
                pools: vec!["A".into()],
                address: IpAddr::V4(ip4("10.0.1.3"))
            })
        );
        assert!(matches!(
            set.allocate_specific_ipv4(&["B"], ip4("10.0.1.2")),
            Err(PoolError::InUse { .. })
        ));
        assert_eq!(
            set.allocate_specific_ipv6(&["V6"], ip6("2001:db8::2")),
            Ok(())
        );
        assert_eq!(set.allocate_ipv6(&["V6"]), Ok(ip6("2001:db8::1")));
    }

    #[test]
    fn duplicate_and_overlapping_pools_are_refused() {
        assert_eq!(
            PoolSet::new(
                &[
                    v4("A", "10.0.0.1", "10.0.0.2"),
                    v4("A", "10.0.1.1", "10.0.1.2")
                ],
                &[]
            ),
            Err(PoolError::DuplicatePool { name: "A".into() })
        );
        assert_eq!(
            PoolSet::new(
                &[
                    v4("A", "10.0.0.1", "10.0.0.20"),
                    v4("B", "10.0.0.20", "10.0.0.30")
                ],
                &[]
            ),
            Err(PoolError::OverlappingPools {
                first: "A".into(),
                second: "B".into()
            })
        );
        assert_eq!(
            PoolSet::new(
                &[],
                &[v6("X", "2001:db8::1", 10), v6("Y", "2001:db8::a", 10)]
            ),
            Err(PoolError::OverlappingPools {
                first: "X".into(),
                second: "Y".into()
            })
        );
        assert!(
            PoolSet::new(
                &[],
                &[v6("X", "2001:db8::1", 9), v6("Y", "2001:db8::a", 10)]
            )
            .is_ok()
        );
    }

    #[test]
    fn redeploy_keeps_unchanged_pools_and_their_addresses() {
        let mut set = two_pools();
        let a = set.allocate_ipv4(&["A"]).unwrap();
        let b = set.allocate_ipv4(&["B"]).unwrap();
        let before = set.ipv4_pool("A").unwrap().clone();
        let report = set
            .reconcile(
                &[
                    v4("A", "10.0.0.1", "10.0.0.2"),
                    v4("B", "10.0.1.1", "10.0.1.3"),
                ],
                &[v6("V6", "2001:db8::1", 2)],
            )
            .unwrap();
        assert_eq!(report, Reconciliation::default());
        assert_eq!(set.ipv4_pool("A"), Some(&before));
        assert!(set.ipv4_pool("A").unwrap().is_allocated(a));
        assert!(set.ipv4_pool("B").unwrap().is_allocated(b));
    }

    #[test]
    fn redeploy_moves_addresses_to_changed_or_renamed_pools_and_reports_the_rest() {
        let mut set = two_pools();
        let a1 = set.allocate_ipv4(&["A"]).unwrap();
        let a2 = set.allocate_ipv4(&["A"]).unwrap();
        let b1 = set.allocate_ipv4(&["B"]).unwrap();
        let v6 = set.allocate_ipv6(&["V6"]).unwrap();
        let report = set
            .reconcile(
                // A shrinks to its first address; B is renamed C and grows; V6 is removed.
                &[
                    v4("A", "10.0.0.1", "10.0.0.1"),
                    v4("C", "10.0.1.1", "10.0.1.200"),
                ],
                &[],
            )
            .unwrap();
        assert_eq!(report.orphaned_ipv4, [a2]);
        assert_eq!(report.orphaned_ipv6, [v6]);
        assert!(set.ipv4_pool("A").unwrap().is_allocated(a1));
        assert_eq!(set.ipv4_owner(b1), Some("C"));
        assert!(set.ipv4_pool("C").unwrap().is_allocated(b1));
        assert!(set.ipv4_pool("B").is_none());
        assert_eq!(
            set.ipv4_pools()
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>(),
            ["A", "C"]
        );
        assert_eq!(set.allocate_ipv4(&["C"]), Ok(ip4("10.0.1.2")));
    }

    #[test]
    fn failed_redeploy_changes_nothing() {
        let mut set = two_pools();
        set.allocate_ipv4(&["A"]).unwrap();
        let before = set.clone();
        let bad_v6 = Ipv6Pool {
            prefix_len: 200,
            ..v6("V6", "2001:db8::1", 2)
        };
        assert!(matches!(
            set.reconcile(&[v4("A", "10.0.0.1", "10.0.0.9")], &[bad_v6]),
            Err(PoolError::InvalidPrefixLength { .. })
        ));
        assert_eq!(set, before);
    }

    #[test]
    fn pool_set_comes_from_a_device_config() {
        let config: DeviceConfig = serde_json::from_value(serde_json::json!({
            "schema_version": 1,
            "version": 1,
            "device_id": "00000000-0000-0000-0000-000000000001",
            "headend": {"identity": {
                "trustpoint": "vpn-cert",
                "certificate_chain_pem": "(not read here)",
                "private_key_pem": "(not read here)"
            }},
            "ipv4_pools": [{"name": "AC_Pool", "start": "10.99.0.1",
                            "end": "10.99.0.254", "mask": "255.255.255.0"}],
            "ipv6_pools": [{"name": "v6pool", "start": "2001:db8:1::1",
                            "prefix_len": 64, "count": 250}]
        }))
        .unwrap();
        let mut set = PoolSet::from_device_config(&config).unwrap();
        assert_eq!(set.allocate_ipv4(&["AC_Pool"]), Ok(ip4("10.99.0.1")));
        assert_eq!(set.allocate_ipv6(&["v6pool"]), Ok(ip6("2001:db8:1::1")));
        assert_eq!(set.ipv6_pool("v6pool").map(|p| p.capacity()), Some(250));
    }

    proptest! {
        #[test]
        fn random_operations_on_a_pool_set_never_hand_out_an_address_twice(
            ops in prop::collection::vec((0u8..5, any::<u8>()), 0..300),
            new_end in 1u8..=255,
        ) {
            let mut set = PoolSet::new(
                &[v4("A", "10.0.0.250", "10.0.1.5"), v4("B", "10.0.2.0", "10.0.2.15")],
                &[],
            )
            .unwrap();
            let candidates: Vec<Ipv4Addr> = (0..=255u8)
                .map(|i| Ipv4Addr::new(10, 0, i % 3, i.wrapping_mul(7)))
                .collect();
            let mut model = HashSet::new();
            for (op, pick) in ops {
                let candidate = candidates[usize::from(pick)];
                match op {
                    0 | 1 => {
                        if let Ok(address) = set.allocate_ipv4(&["A", "B"]) {
                            prop_assert!(set.ipv4_owner(address).is_some());
                            prop_assert!(model.insert(address), "{} twice", address);
                        }
                    }
                    2 => {
                        if set.allocate_specific_ipv4(&["B", "A"], candidate).is_ok() {
                            prop_assert!(model.insert(candidate), "{} twice", candidate);
                        }
                    }
                    _ => prop_assert_eq!(set.release_ipv4(candidate), model.remove(&candidate)),
                }
                let in_use: usize = set.ipv4_pools().iter().map(|p| p.in_use()).sum();
                prop_assert_eq!(in_use, model.len());
            }
            // Redeploy with A shrunk or grown: nothing is lost, nothing duplicated.
            let report = set
                .reconcile(
                    &[
                        v4("A", "10.0.1.0", &format!("10.0.1.{new_end}")),
                        v4("B", "10.0.2.0", "10.0.2.15"),
                    ],
                    &[],
                )
                .unwrap();
            let kept: HashSet<Ipv4Addr> = set
                .ipv4_pools()
                .iter()
                .flat_map(|p| p.allocated().collect::<Vec<_>>())
                .collect();
            let orphans: HashSet<Ipv4Addr> = report.orphaned_ipv4.iter().copied().collect();
            prop_assert!(kept.is_disjoint(&orphans));
            prop_assert_eq!(&kept | &orphans, model);
        }
    }
}
