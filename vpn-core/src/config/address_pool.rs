use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// `ip local pool NAME START-END mask MASK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv4Pool {
    pub name: String,
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
    pub mask: Ipv4Addr,
}

/// `ipv6 local pool NAME START/PREFIX COUNT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv6Pool {
    pub name: String,
    pub start: Ipv6Addr,
    pub prefix_len: u8,
    pub count: u32,
}
