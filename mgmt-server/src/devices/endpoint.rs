//! Where a device's management API listens, from the host name an administrator typed.

use vpn_core::channel::DEFAULT_SENSOR_API_PORT;

use super::SensorError;
use crate::db::devices::Device;
use crate::sensor_client::SensorEndpoint;

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address of the device's API.
pub fn endpoint_of(device: &Device) -> Result<SensorEndpoint, SensorError> {
    parse_host(&device.host_name).ok_or_else(|| SensorError::BadHost {
        device: device.name.clone(),
        host: device.host_name.clone(),
    })
}

/// The endpoint a host name as typed names, if it names one.
pub(super) fn parse_host(text: &str) -> Option<SensorEndpoint> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(address) = text.parse::<std::net::IpAddr>() {
        return Some(SensorEndpoint {
            host: address.to_string(),
            port: DEFAULT_SENSOR_API_PORT,
        });
    }
    if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
        return Some(SensorEndpoint {
            host: socket.ip().to_string(),
            port: socket.port(),
        });
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Some(SensorEndpoint {
            host: host.to_owned(),
            port: port.parse().ok()?,
        }),
        None => Some(SensorEndpoint {
            host: text.to_owned(),
            port: DEFAULT_SENSOR_API_PORT,
        }),
    }
}

#[cfg(test)]
mod tests;
