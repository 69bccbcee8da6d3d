//! The sensor's one TUN device: creation, addresses and routes, and the two tasks that
//! move packets between it and the [`Router`].

use std::io;
use std::process::Command;
use std::sync::Arc;

use bytes::BytesMut;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use tokio::task::JoinHandle;
use tun_rs::{AsyncDevice, DeviceBuilder};
use vpn_core::config::DeviceConfig;

use super::router::{Router, TunQueue};

/// Default name of the TUN device.
pub const DEFAULT_TUN_NAME: &str = "vpn-sensor0";
/// Largest packet read from the TUN device (the device MTU never exceeds it).
const MAX_PACKET: usize = 65_535;
/// Buffer space reserved at a time for TUN reads; packets are carved out of it, so
/// reads allocate once per chunk rather than once per packet.
const READ_CHUNK: usize = 256 * 1024;
/// Bit of `CAP_NET_ADMIN` in the capability sets of `/proc/self/status`.
const CAP_NET_ADMIN: u32 = 12;

/// How the TUN device is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunSettings {
    pub name: String,
    pub mtu: u16,
    /// The headend's own tunnel address, if it has one.
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    /// Networks routed into the device (the address pools).
    pub routes: Vec<IpNet>,
}

impl TunSettings {
    /// Routes every address pool of `config` into a device named `name`, with the
    /// largest MTU any group policy gives its clients (1406 without policies).
    pub fn for_config(
        config: &DeviceConfig,
        name: impl Into<String>,
        ipv4: Option<Ipv4Net>,
        ipv6: Option<Ipv6Net>,
    ) -> Self {
        let mtu = config
            .group_policies
            .iter()
            .map(|p| p.mtu)
            .max()
            .unwrap_or(1406);
        let mut routes: Vec<IpNet> = Vec::new();
        for pool in &config.ipv4_pools {
            let prefix = u32::from(pool.mask).leading_ones() as u8;
            if let Ok(net) = Ipv4Net::new(pool.start, prefix) {
                routes.push(IpNet::V4(net.trunc()));
            }
        }
        for pool in &config.ipv6_pools {
            if let Ok(net) = Ipv6Net::new(pool.start, pool.prefix_len) {
                routes.push(IpNet::V6(net.trunc()));
            }
        }
        routes.dedup();
        Self {
            name: name.into(),
            mtu,
            ipv4,
            ipv6,
            routes,
        }
    }

    /// The routes the agent itself adds: [`Self::routes`] but those the kernel
    /// already has because they are the prefix of the device's own address.
    pub fn added_routes(&self) -> Vec<IpNet> {
        self.routes
            .iter()
            .copied()
            .filter(|route| !is_connected_route(self, *route))
            .collect()
    }
}

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error(
        "the sensor needs CAP_NET_ADMIN to create its TUN device: run it as root or grant it with `setcap cap_net_admin+ep <binary>`"
    )]
    MissingNetAdmin,
    #[error("cannot read the process capabilities from /proc/self/status")]
    Capabilities(#[source] io::Error),
    #[error("cannot create TUN device {name}")]
    CreateDevice {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot route {route} into TUN device {name}: {reason}")]
    Route {
        route: IpNet,
        name: String,
        reason: String,
    },
    #[error("cannot remove the route {route} from TUN device {name}: {reason}")]
    RemoveRoute {
        route: IpNet,
        name: String,
        reason: String,
    },
    #[error("cannot set the MTU of TUN device {name} to {mtu}")]
    Mtu {
        name: String,
        mtu: u16,
        #[source]
        source: io::Error,
    },
}

/// The running data plane: the device, the router, and the tasks between them. The
/// tasks stop when this is dropped.
pub struct Dataplane {
    router: Arc<Router>,
    device: Arc<AsyncDevice>,
    name: String,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Dataplane {
    /// Creates the TUN device, routes the pools into it and starts the reader and
    /// writer tasks. Fails with a clear error without `CAP_NET_ADMIN`.
    pub fn start(
        settings: &TunSettings,
        router: Arc<Router>,
        queue: TunQueue,
    ) -> Result<Self, DataplaneError> {
        if !has_net_admin().map_err(DataplaneError::Capabilities)? {
            return Err(DataplaneError::MissingNetAdmin);
        }
        let device = Arc::new(create_device(settings)?);
        for route in settings.added_routes() {
            add_route(&settings.name, route)?;
        }
        let reader = tokio::spawn(read_loop(Arc::clone(&device), Arc::clone(&router)));
        let writer = tokio::spawn(write_loop(Arc::clone(&device), queue));
        tracing::info!(device = %settings.name, mtu = settings.mtu, routes = ?settings.routes, "data plane started");
        Ok(Self {
            router,
            device,
            name: settings.name.clone(),
            reader,
            writer,
        })
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    pub fn device_name(&self) -> &str {
        &self.name
    }

    /// The device MTU as the kernel reports it.
    pub fn mtu(&self) -> io::Result<u16> {
        self.device.mtu()
    }

    /// Sets the device MTU; packets in flight are not affected.
    pub fn set_mtu(&self, mtu: u16) -> Result<(), DataplaneError> {
        self.device
            .set_mtu(mtu)
            .map_err(|source| DataplaneError::Mtu {
                name: self.name.clone(),
                mtu,
                source,
            })
    }

    /// Routes `route` into the device (`ip route replace`: an existing route to the
    /// same prefix is taken over).
    pub fn add_route(&self, route: IpNet) -> Result<(), DataplaneError> {
        add_route(&self.name, route)
    }

    /// Removes the route of `route` into the device.
    pub fn remove_route(&self, route: IpNet) -> Result<(), DataplaneError> {
        let output = Command::new("ip")
            .args([
                family(route),
                "route",
                "del",
                &route.to_string(),
                "dev",
                &self.name,
            ])
            .output();
        let failed = |reason: String| DataplaneError::RemoveRoute {
            route,
            name: self.name.clone(),
            reason,
        };
        match output {
            Err(e) => Err(failed(format!("cannot run ip: {e}"))),
            Ok(output) if !output.status.success() => Err(failed(
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            )),
            Ok(_) => Ok(()),
        }
    }
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane")
            .field("name", &self.name)
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Whether this process holds `CAP_NET_ADMIN` in its effective set.
pub fn has_net_admin() -> io::Result<bool> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no CapEff line"))?;
    Ok(effective & (1 << CAP_NET_ADMIN) != 0)
}

fn create_device(settings: &TunSettings) -> Result<AsyncDevice, DataplaneError> {
    let mut builder = DeviceBuilder::new()
        .name(settings.name.clone())
        .mtu(settings.mtu)
        .packet_information(false);
    if let Some(net) = settings.ipv4 {
        builder = builder.ipv4(net.addr(), net.prefix_len(), None);
    }
    if let Some(net) = settings.ipv6 {
        builder = builder.ipv6(net.addr(), net.prefix_len());
    }
    builder
        .build_async()
        .map_err(|source| DataplaneError::CreateDevice {
            name: settings.name.clone(),
            source,
        })
}

/// The kernel already routes the prefix of an address configured on the device.
fn is_connected_route(settings: &TunSettings, route: IpNet) -> bool {
    match route {
        IpNet::V4(net) => settings.ipv4.is_some_and(|own| own.trunc() == net),
        IpNet::V6(net) => settings.ipv6.is_some_and(|own| own.trunc() == net),
    }
}

/// Routes `route` into the device with iproute2 (`ip route replace`, so a restart
/// finds the route already there and succeeds).
fn add_route(device: &str, route: IpNet) -> Result<(), DataplaneError> {
    let family = family(route);
    let failed = |reason: String| DataplaneError::Route {
        route,
        name: device.to_owned(),
        reason,
    };
    let output = Command::new("ip")
        .args([
            family,
            "route",
            "replace",
            &route.to_string(),
            "dev",
            device,
        ])
        .output()
        .map_err(|e| failed(format!("cannot run ip: {e}")))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

fn family(route: IpNet) -> &'static str {
    match route {
        IpNet::V4(_) => "-4",
        IpNet::V6(_) => "-6",
    }
}

async fn read_loop(device: Arc<AsyncDevice>, router: Arc<Router>) {
    // The kernel writes into `scratch` (zeroed once); each packet is then copied into
    // a shared chunk, so a packet costs one copy of its own length and an allocation
    // only once per chunk.
    let mut scratch = vec![0u8; MAX_PACKET];
    let mut chunk = BytesMut::with_capacity(READ_CHUNK);
    loop {
        match device.recv(&mut scratch).await {
            Ok(len) => {
                let Some(packet) = scratch.get(..len) else {
                    continue;
                };
                if chunk.capacity() < len {
                    chunk.reserve(READ_CHUNK);
                }
                chunk.extend_from_slice(packet);
                let outcome = router.dispatch(chunk.split().freeze());
                tracing::trace!(len, ?outcome, "packet from TUN");
            }
            Err(e) if is_transient(&e) => continue,
            Err(e) => {
                tracing::error!(error = %e, "TUN read failed; data plane reader stops");
                return;
            }
        }
    }
}

async fn write_loop(device: Arc<AsyncDevice>, mut queue: TunQueue) {
    while let Some(packet) = queue.recv().await {
        if let Err(e) = device.send(&packet).await {
            // A packet the kernel refuses (e.g. bad header) must not stop the others.
            tracing::trace!(error = %e, len = packet.len(), "TUN write failed");
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}
