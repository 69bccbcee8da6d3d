//! IPv4/IPv6 address pool allocation for tunnel clients.
//!
//! One allocator per pool ([`Ipv4PoolAllocator`] for `ip local pool`,
//! [`Ipv6PoolAllocator`] for `ipv6 local pool`) and a [`PoolSet`] holding every pool of
//! a device by name.
//!
//! Policy: the **lowest free address** is handed out first, so the first client of an
//! empty pool gets its start address and a released address is the next one handed out.
//! Network and broadcast addresses (IPv4) and the subnet-router anycast address (IPv6)
//! are never handed out.
//!
//! Cost: a pool keeps a bitmap of its range with a summary hierarchy (one bit per full
//! word), so allocate, release and lookups read a handful of words whatever the pool
//! size. A pool holds at most [`MAX_POOL_ADDRESSES`] addresses (a /12), which bounds its
//! memory to about 130 KiB.

mod ipv4;
mod ipv6;
mod set;
mod slots;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use ipv4::Ipv4PoolAllocator;
pub use ipv6::Ipv6PoolAllocator;
pub use set::{PoolSet, Reconciliation};

/// Most addresses one pool may span (2^20, an IPv4 /12), network/broadcast included.
pub const MAX_POOL_ADDRESSES: u32 = 1 << 20;

/// Whether `mask` is a netmask: ones, then zeros (255.255.255.0 is, 255.0.255.0 is not).
pub fn is_contiguous_netmask(mask: Ipv4Addr) -> bool {
    let bits = u32::from(mask);
    bits.leading_ones() + bits.trailing_zeros() == 32
}

/// Why a pool could not be built or an address not be handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("address pool {pool}: start {start} is after end {end}")]
    StartAfterEnd {
        pool: String,
        start: Ipv4Addr,
        end: Ipv4Addr,
    },
    #[error("address pool {pool}: mask {mask} is not a contiguous netmask")]
    NonContiguousMask { pool: String, mask: Ipv4Addr },
    #[error("address pool {pool}: IPv6 prefix length {prefix_len} is above 128")]
    InvalidPrefixLength { pool: String, prefix_len: u8 },
    #[error("address pool {pool}: address count is 0")]
    EmptyPool { pool: String },
    #[error(
        "address pool {pool}: {count} addresses from {start} run past its /{prefix_len} prefix"
    )]
    LeavesPrefix {
        pool: String,
        start: Ipv6Addr,
        prefix_len: u8,
        count: u32,
    },
    #[error("address pool {pool}: {size} addresses exceed the limit of {limit}")]
    TooLarge {
        pool: String,
        size: u128,
        limit: u32,
    },
    #[error(
        "address pool {pool}: no address can be handed out (only network, broadcast or anycast addresses)"
    )]
    NoUsableAddress { pool: String },
    #[error("address pool {name} is defined twice")]
    DuplicatePool { name: String },
    #[error("address pools {first} and {second} overlap")]
    OverlappingPools { first: String, second: String },
    #[error("unknown address pool {name}")]
    UnknownPool { name: String },
    #[error("no address pool is assigned")]
    NoPoolAssigned,
    #[error("address pool {pool} has no free address")]
    Exhausted { pool: String },
    #[error("no free address in address pools {}", pools.join(", "))]
    AllExhausted { pools: Vec<String> },
    #[error("{address} is not an address of pool {pool}")]
    NotInPool { pool: String, address: IpAddr },
    #[error("{address} is in none of the address pools {}", pools.join(", "))]
    NotInAssignedPools { pools: Vec<String>, address: IpAddr },
    #[error(
        "{address} is a network, broadcast or anycast address of pool {pool} and is never handed out"
    )]
    ReservedAddress { pool: String, address: IpAddr },
    #[error("{address} of pool {pool} is already in use")]
    InUse { pool: String, address: IpAddr },
}
