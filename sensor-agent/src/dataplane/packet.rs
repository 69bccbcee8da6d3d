//! The two fields of an IP header the data plane routes by.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Source and destination of an IPv4 or IPv6 packet; `None` if it is neither or too
/// short to hold its header.
pub(crate) fn addresses(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match packet.first()? >> 4 {
        4 => {
            let header = packet.get(..20)?;
            let source: [u8; 4] = header.get(12..16)?.try_into().ok()?;
            let destination: [u8; 4] = header.get(16..20)?.try_into().ok()?;
            Some((
                IpAddr::V4(Ipv4Addr::from(source)),
                IpAddr::V4(Ipv4Addr::from(destination)),
            ))
        }
        6 => {
            let header = packet.get(..40)?;
            let source: [u8; 16] = header.get(8..24)?.try_into().ok()?;
            let destination: [u8; 16] = header.get(24..40)?.try_into().ok()?;
            Some((
                IpAddr::V6(Ipv6Addr::from(source)),
                IpAddr::V6(Ipv6Addr::from(destination)),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_gives_source_and_destination() {
        let mut packet = [0u8; 20];
        packet[0] = 0x45;
        packet[12..16].copy_from_slice(&[10, 0, 0, 2]);
        packet[16..20].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(
            addresses(&packet),
            Some(("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap()))
        );
    }

    #[test]
    fn ipv6_header_gives_source_and_destination() {
        let mut packet = [0u8; 40];
        packet[0] = 0x60;
        packet[8..24].copy_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        packet[24..40].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(
            addresses(&packet),
            Some((
                "2001:db8::2".parse().unwrap(),
                "2001:db8::1".parse().unwrap()
            ))
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let found = addresses(&bytes);
            let version = bytes.first().map(|b| b >> 4);
            let long_enough = match version {
                Some(4) => bytes.len() >= 20,
                Some(6) => bytes.len() >= 40,
                _ => false,
            };
            proptest::prop_assert_eq!(found.is_some(), long_enough);
        }
    }

    #[test]
    fn truncated_or_unknown_packets_have_no_addresses() {
        assert_eq!(addresses(&[]), None);
        assert_eq!(addresses(&[0x45; 19]), None);
        assert_eq!(addresses(&[0x60; 39]), None);
        assert_eq!(addresses(&[0x50; 60]), None);
    }
}
