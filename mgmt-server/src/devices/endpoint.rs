//! Where a device's management API listens, from the host name an administrator typed.

use vpn_core::channel::DEFAULT_SENSOR_API_PORT;

use super::SensorError;
use crate::db::devices::Device;
use crate::sensor_client::SensorEndpoint;

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address of the device's API.
pub fn endpoint_of(device: &Device) -> Result<SensorEndpoint, SensorError> {
    let bad = || SensorError::BadHost {
        device: device.name.clone(),
        host: device.host_name.clone(),
    };
    let text = device.host_name.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(address) = text.parse::<std::net::IpAddr>() {
        return Ok(SensorEndpoint {
            host: address.to_string(),
            port: DEFAULT_SENSOR_API_PORT,
        });
    }
    if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
        return Ok(SensorEndpoint {
            host: socket.ip().to_string(),
            port: socket.port(),
        });
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok(SensorEndpoint {
            host: host.to_owned(),
            port: port.parse().map_err(|_| bad())?,
        }),
        None => Ok(SensorEndpoint {
            host: text.to_owned(),
            port: DEFAULT_SENSOR_API_PORT,
        }),
    }
}

#[cfg(test)]
mod tests;
