//! The parts of the running agent a configuration drives: the headend (its listening
//! port and the TLS identity it presents) and the TUN device (its MTU and the routes
//! of the address pools). [`Services`] implements
//! [`LiveServices`], the seam through which a
//! deploy changes them live:
//!
//! * **prepare** does everything that can fail while clients still see the running
//!   configuration: builds the rustls server configuration of a new identity, binds a
//!   new `ssl_port` (and, with DTLS enabled, the UDP `dtls_port`), adds the routes of
//!   new pools and sets the TUN MTU. A failure
//!   refuses the deploy and undoes what was already prepared.
//! * **activate** (after the configuration is written) swaps the identity for new
//!   connections, starts accepting on the new port and stops accepting on the old one,
//!   starts or stops the DTLS service (DTLS tunnels on a port that stops fall back to
//!   TLS),
//!   and removes the routes of pools that are gone. It cannot fail. Established TLS
//!   connections and their tunnels go on with what they negotiated.
//!
//! The headend starts with the first configuration that has an identity certificate
//! and stops accepting when a configuration has none.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ipnet::IpNet;
use tokio::net::{TcpListener, UdpSocket};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vpn_core::config::{DeviceConfig, IdentityCertificate};

use crate::config_store::{ApplyError, LiveServices, PreparedServices};
use crate::dataplane::{Dataplane, Router, TunSettings};
use crate::headend::dtls::{DtlsServer, DtlsService, DtlsSetupError};
use crate::headend::{Headend, HeadendSettings, TlsIdentity};
use crate::sessions::SessionDb;

/// What the services are built from that is not in the device configuration.
#[derive(Debug)]
pub struct ServiceParts {
    /// The running configuration, as the deployer sends it.
    pub config: watch::Receiver<Arc<DeviceConfig>>,
    pub sessions: SessionDb,
    pub router: Arc<Router>,
    pub headend: HeadendSettings,
    /// Address the headend listens on; the port is the configuration's `ssl_port`.
    pub listen: IpAddr,
    /// The runtime the headend's accept task runs on.
    pub runtime: Handle,
}

/// The running TUN device and the settings it was started with (its name and own
/// addresses are kept; MTU and routes follow the configuration).
#[derive(Debug)]
pub struct TunDevice {
    pub dataplane: Dataplane,
    pub started_with: TunSettings,
}

/// The headend and TUN device of the running agent, changed by deploys.
#[derive(Debug)]
pub struct Services {
    shared: Arc<Shared>,
}

impl Services {
    /// Services with no headend running yet, and the TUN device (when there is one)
    /// as it was started. Bring them to a configuration with [`Self::start`].
    pub fn new(parts: ServiceParts, tun: Option<TunDevice>) -> Arc<Self> {
        let state = State {
            headend: None,
            listening: None,
            dtls: None,
            identity: None,
            routes: tun
                .as_ref()
                .map(|tun| tun.started_with.added_routes())
                .unwrap_or_default(),
            mtu: tun.as_ref().map(|tun| tun.started_with.mtu),
        };
        Arc::new(Self {
            shared: Arc::new(Shared {
                parts,
                tun,
                state: Mutex::new(state),
            }),
        })
    }

    /// Prepares and activates `config` at once (agent start).
    pub fn start(&self, config: &DeviceConfig) -> Result<Vec<String>, ApplyError> {
        Ok(self.prepare(config)?.activate())
    }

    /// The address the headend accepts connections on, if it runs.
    pub fn headend_address(&self) -> Option<SocketAddr> {
        self.shared
            .state()
            .listening
            .as_ref()
            .map(|listening| listening.address)
    }

    /// The running headend, if a configuration with an identity started it.
    pub fn headend(&self) -> Option<Arc<Headend>> {
        self.shared.state().headend.clone()
    }

    /// The UDP address the headend receives DTLS on, if it does.
    pub fn dtls_address(&self) -> Option<SocketAddr> {
        self.shared.state().dtls.as_ref().map(|dtls| dtls.address)
    }

    /// Stops accepting connections (agent shutdown); established ones go on until
    /// the runtime ends.
    pub fn stop_accepting(&self) {
        let mut state = self.shared.state();
        if let Some(listening) = state.listening.take() {
            listening.task.abort();
        }
        if let Some(dtls) = state.dtls.take() {
            dtls.task.abort();
        }
    }
}

impl LiveServices for Services {
    fn prepare(&self, next: &DeviceConfig) -> Result<Box<dyn PreparedServices>, ApplyError> {
        let shared = &self.shared;
        let mut prepared = Box::new(Prepared {
            shared: Arc::clone(shared),
            activated: false,
            stop_headend: false,
            identity: None,
            listener: None,
            dtls: DtlsChange::Keep,
            added_routes: Vec::new(),
            stale_routes: Vec::new(),
            routes: Vec::new(),
            mtu: None,
        });
        let (running_identity, running_address, running_dtls, running_routes, running_mtu) = {
            let state = shared.state();
            (
                state.identity.clone(),
                state.listening.as_ref().map(|l| l.address),
                state.dtls.as_ref().map(|d| d.address),
                state.routes.clone(),
                state.mtu,
            )
        };

        let identity = &next.headend.identity;
        let headend_runs = !identity.certificate_chain_pem.trim().is_empty();
        if !headend_runs {
            prepared.stop_headend = running_address.is_some() || running_identity.is_some();
        } else {
            if running_identity.as_ref() != Some(identity) {
                let tls = TlsIdentity::new(identity).map_err(ApplyError::Identity)?;
                prepared.identity = Some((identity.clone(), tls));
            }
            let address = SocketAddr::new(shared.parts.listen, next.headend.ssl_port);
            if running_address != Some(address) {
                prepared.listener = Some((address, shared.bind(address)?));
            }
        }
        if headend_runs && next.headend.dtls_enabled {
            let address = SocketAddr::new(shared.parts.listen, next.headend.dtls_port);
            if running_dtls != Some(address) {
                let failed = |source| ApplyError::DtlsListen { address, source };
                let socket = shared.bind_udp(address).map_err(failed)?;
                let server = DtlsServer::new().map_err(failed)?;
                prepared.dtls = DtlsChange::Start {
                    address,
                    socket,
                    server,
                };
            }
        } else if running_dtls.is_some() {
            prepared.dtls = DtlsChange::Stop;
        }

        if let Some(tun) = &shared.tun {
            let wanted = TunSettings::for_config(
                next,
                tun.started_with.name.clone(),
                tun.started_with.ipv4,
                tun.started_with.ipv6,
            );
            let routes = wanted.added_routes();
            prepared.stale_routes = running_routes
                .iter()
                .copied()
                .filter(|route| !routes.contains(route))
                .collect();
            for route in routes.iter().filter(|r| !running_routes.contains(r)) {
                // Undone by `prepared`'s drop if a later step fails.
                tun.dataplane
                    .add_route(*route)
                    .map_err(ApplyError::TunDevice)?;
                prepared.added_routes.push(*route);
            }
            prepared.routes = routes;
            if running_mtu != Some(wanted.mtu) {
                tun.dataplane
                    .set_mtu(wanted.mtu)
                    .map_err(ApplyError::TunDevice)?;
                prepared.mtu = Some((running_mtu, wanted.mtu));
            }
        }
        Ok(prepared)
    }
}

struct Shared {
    parts: ServiceParts,
    tun: Option<TunDevice>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("tun", &self.tun)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Binds `address` now (so a port in use refuses the deploy) and registers the
    /// socket with the runtime.
    fn bind(&self, address: SocketAddr) -> Result<TcpListener, ApplyError> {
        let failed = |source| ApplyError::Listen { address, source };
        let listener = std::net::TcpListener::bind(address).map_err(failed)?;
        listener.set_nonblocking(true).map_err(failed)?;
        let _runtime = self.parts.runtime.enter();
        TcpListener::from_std(listener).map_err(failed)
    }

    /// Binds the UDP `address` now (so a port in use refuses the deploy).
    fn bind_udp(&self, address: SocketAddr) -> Result<UdpSocket, DtlsSetupError> {
        let failed = |source| DtlsSetupError::Bind { address, source };
        let socket = std::net::UdpSocket::bind(address).map_err(failed)?;
        socket.set_nonblocking(true).map_err(failed)?;
        let _runtime = self.parts.runtime.enter();
        UdpSocket::from_std(socket).map_err(failed)
    }
}

/// What runs now.
#[derive(Debug)]
struct State {
    headend: Option<Arc<Headend>>,
    listening: Option<Listening>,
    /// The DTLS service's receive task and its address.
    dtls: Option<Listening<()>>,
    /// The identity the headend presents to new connections.
    identity: Option<IdentityCertificate>,
    /// The routes the agent added into the TUN device.
    routes: Vec<IpNet>,
    mtu: Option<u16>,
}

/// The headend's accept (or DTLS receive) task and its address.
#[derive(Debug)]
struct Listening<T = std::io::Result<()>> {
    address: SocketAddr,
    task: JoinHandle<T>,
}

/// What a prepared change does to the DTLS service.
enum DtlsChange {
    Keep,
    Start {
        address: SocketAddr,
        socket: UdpSocket,
        server: Arc<DtlsServer>,
    },
    Stop,
}

/// A prepared change: undone when dropped before [`PreparedServices::activate`].
struct Prepared {
    shared: Arc<Shared>,
    activated: bool,
    stop_headend: bool,
    identity: Option<(IdentityCertificate, TlsIdentity)>,
    listener: Option<(SocketAddr, TcpListener)>,
    dtls: DtlsChange,
    /// Routes added while preparing (removed again on undo).
    added_routes: Vec<IpNet>,
    /// Routes of pools that are gone (removed on activation).
    stale_routes: Vec<IpNet>,
    /// Every route the agent keeps in the device once activated.
    routes: Vec<IpNet>,
    /// (before, after) when the MTU was changed while preparing.
    mtu: Option<(Option<u16>, u16)>,
}

impl PreparedServices for Prepared {
    fn activate(mut self: Box<Self>) -> Vec<String> {
        self.activated = true;
        let shared = Arc::clone(&self.shared);
        let parts = &shared.parts;
        let mut changes = Vec::new();
        let mut state = shared.state();
        if self.stop_headend {
            if let Some(listening) = state.listening.take() {
                listening.task.abort();
            }
            if let Some(dtls) = state.dtls.take() {
                dtls.task.abort();
            }
            state.headend = None;
            state.identity = None;
            changes.push(
                "the headend stopped accepting connections: the configuration has no identity certificate"
                    .to_owned(),
            );
        }
        if let Some((certificate, tls)) = self.identity.take() {
            changes.push(format!(
                "the headend presents identity trustpoint {} (server-cert-hash {}) to new connections",
                certificate.trustpoint,
                tls.server_cert_sha1()
            ));
            match &state.headend {
                Some(headend) => headend.set_identity(tls),
                None => {
                    state.headend = Some(Headend::with_identity(
                        parts.config.clone(),
                        parts.sessions.clone(),
                        Arc::clone(&parts.router),
                        parts.headend,
                        tls,
                    ));
                }
            }
            state.identity = Some(certificate);
        }
        if let Some((address, listener)) = self.listener.take()
            && let Some(headend) = state.headend.clone()
        {
            let task = parts.runtime.spawn(headend.serve(listener));
            if let Some(old) = state.listening.replace(Listening { address, task }) {
                old.task.abort();
                tracing::info!(address = %old.address, "AnyConnect headend stopped listening");
            }
            tracing::info!(%address, "AnyConnect headend listening");
            changes.push(format!("the headend listens on {address}"));
        }
        match std::mem::replace(&mut self.dtls, DtlsChange::Keep) {
            DtlsChange::Keep => {}
            DtlsChange::Start {
                address,
                socket,
                server,
            } => {
                if let Some(headend) = state.headend.clone() {
                    let task = parts.runtime.spawn(Arc::clone(&server).serve(socket));
                    headend.set_dtls(Some(DtlsService {
                        port: address.port(),
                        server,
                    }));
                    if let Some(old) = state.dtls.replace(Listening { address, task }) {
                        old.task.abort();
                    }
                    tracing::info!(%address, "DTLS listening");
                    changes.push(format!("the headend receives DTLS on UDP {address}"));
                }
            }
            DtlsChange::Stop => {
                if let Some(headend) = &state.headend {
                    headend.set_dtls(None);
                }
                if let Some(old) = state.dtls.take() {
                    old.task.abort();
                    changes.push(format!(
                        "the headend stopped receiving DTLS on UDP {}",
                        old.address
                    ));
                }
            }
        }
        if let Some(tun) = &shared.tun {
            for route in &self.stale_routes {
                match tun.dataplane.remove_route(*route) {
                    Ok(()) => changes.push(format!(
                        "route {route} removed from {}",
                        tun.started_with.name
                    )),
                    // The pool is gone from the configuration: packets to it find no
                    // session and are dropped either way.
                    Err(e) => tracing::warn!(error = %e, "stale pool route left in place"),
                }
            }
            for route in &self.added_routes {
                changes.push(format!("route {route} added to {}", tun.started_with.name));
            }
            state.routes = std::mem::take(&mut self.routes);
            if let Some((before, after)) = self.mtu {
                state.mtu = Some(after);
                changes.push(match before {
                    Some(before) => format!(
                        "TUN device {} MTU {before} -> {after}",
                        tun.started_with.name
                    ),
                    None => format!("TUN device {} MTU {after}", tun.started_with.name),
                });
            }
        }
        changes
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if self.activated {
            return;
        }
        // Not activated: put the TUN device back as it was. A prepared listener or TLS
        // identity is simply dropped (the port closes).
        let Some(tun) = &self.shared.tun else {
            return;
        };
        for route in &self.added_routes {
            if let Err(e) = tun.dataplane.remove_route(*route) {
                tracing::warn!(error = %e, "route of a refused deploy left in place");
            }
        }
        if let Some((Some(before), _)) = self.mtu
            && let Err(e) = tun.dataplane.set_mtu(before)
        {
            tracing::warn!(error = %e, "MTU of a refused deploy left in place");
        }
    }
}

#[cfg(test)]
mod tests;
