//! The session database: every live VPN session of the sensor, what `show vpn-sessiondb`
//! reads and what `vpn-sessiondb logoff` ends.
//!
//! A [`SessionDb`] is a cheap handle (an `Arc` around a mutex) shared by the headend,
//! the control socket and the housekeeping task. It owns the address pools, so an
//! address is handed out exactly while its session lives, including while the session
//! is detached (TCP lost) and waiting for the client to reconnect with its cookie.
//!
//! Cookies are stored as SHA-256 hashes only; a session is found by the hash and is
//! bound to the machine certificate that logged in. Ending a session (logout, logoff,
//! timeout, preemption) kills its cookie, releases its addresses and tells its tunnel
//! task to stop through a [`TunnelStop`] watch channel. Time is always a parameter.

mod cookie;
mod counters;
mod events;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::{Duration, OffsetDateTime};
use tokio::sync::watch;
use vpn_core::cli::{LogoffTarget, SessionStats};
use vpn_core::config::{Ipv4Pool, Ipv6Pool};
use vpn_core::log_escape::escaped;
use vpn_core::pool::{PoolError, PoolSet};
use vpn_core::session::{
    AuthMode, CertificateSummary, ClientInfo, DtlsTunnel, LICENSE_ANYCONNECT_PREMIUM, ParentTunnel,
    SessionRecord, TlsTunnel, audit_session_id,
};

pub use cookie::{
    COOKIE_BYTES, COOKIE_HEX_LEN, CookieFormatError, CookieHash, MachineFingerprint, SessionCookie,
};
pub use counters::LiveCounters;
pub use vpn_core::session::{EndReason, EventPage, SessionEvent, SessionEventKind};

/// Settings of the database that do not come from a group policy.
#[derive(Debug, Clone)]
pub struct SessionDbSettings {
    /// The headend's address, part of every `Audt Sess ID`.
    pub headend_address: Ipv4Addr,
    /// Most sessions at once (`Device Total VPN Capacity`); logins beyond are refused.
    pub device_capacity: u32,
    /// How long a detached session (TCP lost, no logout) keeps its cookie and address.
    pub disconnected_timeout: Duration,
    /// Most events kept for [`SessionDb::events_since`].
    pub event_capacity: usize,
}

impl Default for SessionDbSettings {
    fn default() -> Self {
        Self {
            headend_address: Ipv4Addr::UNSPECIFIED,
            device_capacity: 250,
            disconnected_timeout: Duration::minutes(30),
            event_capacity: 1024,
        }
    }
}

/// Everything known about a client when its authentication succeeds.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub username: String,
    /// Connection profile name.
    pub tunnel_group: String,
    pub group_policy: String,
    /// IPv4 pools to allocate from, in order (empty: no IPv4 address).
    pub ipv4_pools: Vec<String>,
    /// IPv6 pools to allocate from, in order (empty: no IPv6 address).
    pub ipv6_pools: Vec<String>,
    pub public_ip: IpAddr,
    pub tcp_src_port: u16,
    pub tcp_dst_port: u16,
    pub auth_mode: AuthMode,
    pub client: ClientInfo,
    /// The TLS client certificate the cookie is bound to; `None` binds to nothing.
    pub machine_fingerprint: Option<MachineFingerprint>,
    pub machine_certificate: Option<CertificateSummary>,
    pub user_certificate: Option<CertificateSummary>,
    pub username_derivation: String,
    /// Group policy `vpn-idle-timeout`.
    pub idle_timeout_minutes: Option<u32>,
    /// Group policy `vpn-session-timeout` (maximum connect time).
    pub max_connect_time_minutes: Option<u32>,
    /// Group policy `vpn-simultaneous-logins`.
    pub simultaneous_logins: u32,
}

/// What a successful login hands back to the headend.
#[derive(Debug, Clone)]
pub struct LoginGrant {
    pub index: u32,
    /// Shown to the client once; the database keeps only its hash.
    pub cookie: SessionCookie,
    pub assigned_ipv4: Option<Ipv4Addr>,
    pub assigned_ipv6: Option<Ipv6Addr>,
    pub audit_session_id: String,
    /// When the session ends by maximum connect time, if it has one.
    pub expires_at: Option<OffsetDateTime>,
    /// Older sessions of the same user logged off to respect the simultaneous-login limit.
    pub preempted: Vec<u32>,
}

/// What a tunnel task is told through [`Attachment::stop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelStop {
    /// Keep running.
    Run,
    /// The client reconnected on another connection; close this one, keep the session.
    Superseded,
    /// The session is over; send the client a disconnect with this reason and close.
    SessionEnded(EndReason),
}

/// A data tunnel attached to a session (one CONNECT), handed to the tunnel task.
#[derive(Debug)]
pub struct Attachment {
    pub index: u32,
    /// The `n` of tunnel id `index.n`.
    pub tunnel_number: u32,
    pub assigned_ipv4: Option<Ipv4Addr>,
    pub assigned_ipv6: Option<Ipv6Addr>,
    /// Counters of the SSL tunnel; kept across reconnects so the session totals grow.
    pub counters: Arc<LiveCounters>,
    /// Changes when the tunnel must stop.
    pub stop: watch::Receiver<TunnelStop>,
}

/// How a TLS data tunnel was set up (for `show vpn-sessiondb detail`).
#[derive(Debug, Clone)]
pub struct TlsTunnelSetup {
    /// e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// e.g. `TLSv1.3`.
    pub encapsulation: String,
    pub tcp_src_port: u16,
    pub tcp_dst_port: u16,
}

/// How a DTLS data tunnel was set up (for `show vpn-sessiondb detail`).
#[derive(Debug, Clone)]
pub struct DtlsTunnelSetup {
    /// OpenSSL name, e.g. `PSK-AES256-GCM-SHA384`.
    pub cipher_suite: String,
    /// e.g. `DTLSv1.2`.
    pub encapsulation: String,
    pub udp_src_port: u16,
    pub udp_dst_port: u16,
}

/// A DTLS data tunnel attached next to a session's TLS tunnel.
#[derive(Debug, Clone)]
pub struct DtlsAttachment {
    /// The `n` of tunnel id `index.n`.
    pub tunnel_number: u32,
    /// Counters of the DTLS tunnel; kept across DTLS re-establishments.
    pub counters: Arc<LiveCounters>,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("group policy allows no simultaneous login (limit 0) for user {username}")]
    LoginsNotPermitted { username: String },
    #[error("device capacity of {capacity} sessions reached")]
    CapacityReached { capacity: u32 },
    #[error("no address pool is configured for the session")]
    NoAddressPool,
    #[error("address assignment failed")]
    Address(#[from] PoolError),
    #[error("cannot issue a cookie")]
    Cookie(#[from] CookieFormatError),
}

/// Why a presented cookie does not open a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("malformed cookie")]
    Malformed(#[from] CookieFormatError),
    #[error("no session has this cookie (never issued, logged out or expired)")]
    Unknown,
    #[error("the cookie is bound to another machine certificate")]
    MachineMismatch,
    #[error("the session's maximum connect time has passed")]
    Expired,
}

/// Why a tunnel could not be attached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    #[error("session {index} does not exist (it ended)")]
    NoSuchSession { index: u32 },
    #[error("tunnel {index}.{tunnel_number} is no longer the session's TLS tunnel")]
    TunnelGone { index: u32, tunnel_number: u32 },
}

/// The session database; clone it freely, every clone is the same database.
#[derive(Debug, Clone)]
pub struct SessionDb {
    state: Arc<Mutex<State>>,
}

impl SessionDb {
    /// An empty database handing out addresses from `pools`.
    pub fn new(pools: PoolSet, settings: SessionDbSettings) -> Self {
        let events = events::EventLog::new(settings.event_capacity);
        let stats = SessionStats {
            device_capacity: settings.device_capacity,
            ..SessionStats::default()
        };
        Self {
            state: Arc::new(Mutex::new(State {
                sessions: BTreeMap::new(),
                by_cookie: HashMap::new(),
                pools,
                settings,
                next_index: 1,
                stats,
                events,
            })),
        }
    }

    /// Creates a session for an authenticated client: enforces the simultaneous-login
    /// limit (logging off the user's oldest sessions, as ASA does), allocates its
    /// addresses and issues its cookie.
    pub fn login(&self, new: NewSession, now: OffsetDateTime) -> Result<LoginGrant, LoginError> {
        let mut state = self.lock();
        if new.simultaneous_logins == 0 {
            return Err(LoginError::LoginsNotPermitted {
                username: new.username,
            });
        }
        if new.ipv4_pools.is_empty() && new.ipv6_pools.is_empty() {
            return Err(LoginError::NoAddressPool);
        }
        let preempted = state.preempt_for(&new.username, new.simultaneous_logins, now);
        let capacity = state.settings.device_capacity;
        if capacity > 0 && state.sessions.len() >= capacity as usize {
            return Err(LoginError::CapacityReached { capacity });
        }
        let (assigned_ipv4, assigned_ipv6) = state.allocate(&new)?;
        let (cookie, cookie_hash) = match cookie::issue() {
            Ok(issued) => issued,
            Err(e) => {
                state.release(assigned_ipv4, assigned_ipv6);
                return Err(e.into());
            }
        };
        let index = state.take_index();
        let audit = audit_session_id(state.settings.headend_address, index, now);
        let expires_at = new
            .max_connect_time_minutes
            .map(|m| now + Duration::minutes(i64::from(m)));
        let record = SessionRecord {
            index,
            username: new.username,
            assigned_ipv4,
            assigned_ipv6,
            public_ip: new.public_ip,
            group_policy: new.group_policy,
            tunnel_group: new.tunnel_group,
            login_time: now,
            last_activity: now,
            audit_session_id: audit.clone(),
            license: LICENSE_ANYCONNECT_PREMIUM.to_owned(),
            auth_mode: new.auth_mode,
            idle_timeout_minutes: new.idle_timeout_minutes,
            client: new.client,
            parent: ParentTunnel {
                tcp_src_port: new.tcp_src_port,
                tcp_dst_port: new.tcp_dst_port,
                last_activity: now,
                counters: Default::default(),
            },
            ssl: None,
            dtls: None,
            machine_certificate: new.machine_certificate,
            user_certificate: new.user_certificate,
            username_derivation: new.username_derivation,
        };
        log_session_started(&record);
        state.events.push(
            now,
            index,
            &record.username,
            &record.tunnel_group,
            SessionEventKind::Started {
                public_ip: record.public_ip,
                assigned_ipv4,
                assigned_ipv6,
            },
        );
        let (stop_tx, _) = watch::channel(TunnelStop::Run);
        state.by_cookie.insert(cookie_hash, index);
        state.sessions.insert(
            index,
            LiveSession {
                record,
                cookie_hash,
                machine_fingerprint: new.machine_fingerprint,
                expires_at,
                detached_since: None,
                parent_counters: Arc::new(LiveCounters::new(now)),
                ssl_counters: Arc::new(LiveCounters::new(now)),
                dtls_counters: Arc::new(LiveCounters::new(now)),
                attached: None,
                dtls_attached: None,
                stop: stop_tx,
                next_tunnel_number: 2,
            },
        );
        state.stats.cumulative_sessions += 1;
        let live = state.sessions.len() as u64;
        state.stats.peak_concurrent_sessions = state.stats.peak_concurrent_sessions.max(live);
        Ok(LoginGrant {
            index,
            cookie,
            assigned_ipv4,
            assigned_ipv6,
            audit_session_id: audit,
            expires_at,
            preempted,
        })
    }

    /// The session a presented cookie opens, if the connection shows the machine
    /// certificate the cookie is bound to and the session has not expired. An expired
    /// session is ended on the spot.
    pub fn authenticate_cookie(
        &self,
        cookie: &str,
        machine: Option<&MachineFingerprint>,
        now: OffsetDateTime,
    ) -> Result<u32, CookieError> {
        let hash = cookie::hash_presented(cookie)?;
        let mut state = self.lock();
        let index = *state.by_cookie.get(&hash).ok_or(CookieError::Unknown)?;
        let session = state.sessions.get(&index).ok_or(CookieError::Unknown)?;
        if let Some(bound) = &session.machine_fingerprint
            && Some(bound) != machine
        {
            return Err(CookieError::MachineMismatch);
        }
        if session.expires_at.is_some_and(|at| at <= now) {
            state.end(index, EndReason::MaxTimeExceeded, now);
            return Err(CookieError::Expired);
        }
        Ok(index)
    }

    /// Attaches a TLS data tunnel (a CONNECT) to a session. A tunnel already attached
    /// is told to stop ([`TunnelStop::Superseded`]); the session keeps its addresses.
    pub fn attach(
        &self,
        index: u32,
        setup: &TlsTunnelSetup,
        now: OffsetDateTime,
    ) -> Result<Attachment, AttachError> {
        let mut state = self.lock();
        let session = state
            .sessions
            .get_mut(&index)
            .ok_or(AttachError::NoSuchSession { index })?;
        let tunnel_number = session.next_tunnel_number;
        session.next_tunnel_number = session.next_tunnel_number.saturating_add(1);
        // Tell the previous tunnel to go, then give the new one a fresh channel.
        session.stop.send_replace(TunnelStop::Superseded);
        let (stop_tx, stop_rx) = watch::channel(TunnelStop::Run);
        session.stop = stop_tx;
        session.attached = Some(tunnel_number);
        session.dtls_attached = None;
        session.record.dtls = None;
        session.detached_since = None;
        session.record.ssl = Some(TlsTunnel::new(
            tunnel_number,
            &setup.cipher_suite,
            setup.encapsulation.clone(),
            setup.tcp_src_port,
            setup.tcp_dst_port,
            now,
        ));
        let attachment = Attachment {
            index,
            tunnel_number,
            assigned_ipv4: session.record.assigned_ipv4,
            assigned_ipv6: session.record.assigned_ipv6,
            counters: Arc::clone(&session.ssl_counters),
            stop: stop_rx,
        };
        // Every CONNECT is a new SSL tunnel for the cumulative count, reconnects too.
        state.stats.cumulative_ssl_tunnels += 1;
        let attached = state
            .sessions
            .values()
            .filter(|s| s.attached.is_some())
            .count() as u64;
        state.stats.peak_concurrent_ssl_tunnels =
            state.stats.peak_concurrent_ssl_tunnels.max(attached);
        Ok(attachment)
    }

    /// The tunnel `tunnel_number` lost its connection without a logout: the session
    /// stays, with its cookie and addresses, until the disconnected timeout. Does
    /// nothing if that tunnel was already superseded by a reconnect.
    pub fn detach(&self, index: u32, tunnel_number: u32, now: OffsetDateTime) {
        let mut state = self.lock();
        let Some(session) = state.sessions.get_mut(&index) else {
            return;
        };
        if session.attached != Some(tunnel_number) {
            return;
        }
        session.attached = None;
        session.detached_since = Some(now);
        session.record.ssl = None;
        session.dtls_attached = None;
        session.record.dtls = None;
    }

    /// Attaches a DTLS data tunnel next to the TLS tunnel `ssl_tunnel_number` (its
    /// handshake used that connection's PSK). A DTLS tunnel already attached is
    /// replaced. Refused when that TLS tunnel is no longer the session's.
    pub fn attach_dtls(
        &self,
        index: u32,
        ssl_tunnel_number: u32,
        setup: &DtlsTunnelSetup,
        now: OffsetDateTime,
    ) -> Result<DtlsAttachment, AttachError> {
        let mut state = self.lock();
        let session = state
            .sessions
            .get_mut(&index)
            .ok_or(AttachError::NoSuchSession { index })?;
        if session.attached != Some(ssl_tunnel_number) {
            return Err(AttachError::TunnelGone {
                index,
                tunnel_number: ssl_tunnel_number,
            });
        }
        let tunnel_number = session.next_tunnel_number;
        session.next_tunnel_number = session.next_tunnel_number.saturating_add(1);
        session.dtls_attached = Some(tunnel_number);
        session.record.dtls = Some(DtlsTunnel::new(
            tunnel_number,
            &setup.cipher_suite,
            setup.encapsulation.clone(),
            setup.udp_src_port,
            setup.udp_dst_port,
            now,
        ));
        let attachment = DtlsAttachment {
            tunnel_number,
            counters: Arc::clone(&session.dtls_counters),
        };
        state.stats.cumulative_dtls_tunnels += 1;
        let attached = state
            .sessions
            .values()
            .filter(|s| s.dtls_attached.is_some())
            .count() as u64;
        state.stats.peak_concurrent_dtls_tunnels =
            state.stats.peak_concurrent_dtls_tunnels.max(attached);
        Ok(attachment)
    }

    /// The DTLS tunnel `tunnel_number` is gone (dead peer, closed, its TLS tunnel
    /// ended); the session goes on over TLS. Does nothing if another DTLS tunnel has
    /// replaced it.
    pub fn detach_dtls(&self, index: u32, tunnel_number: u32) {
        let mut state = self.lock();
        let Some(session) = state.sessions.get_mut(&index) else {
            return;
        };
        if session.dtls_attached != Some(tunnel_number) {
            return;
        }
        session.dtls_attached = None;
        session.record.dtls = None;
    }

    /// Ends a session for `reason`; false if it no longer existed.
    pub fn end(&self, index: u32, reason: EndReason, now: OffsetDateTime) -> bool {
        self.lock().end(index, reason, now)
    }

    /// The client logged out (CSTP DISCONNECT): the session ends and its cookie dies.
    pub fn logout(&self, index: u32, now: OffsetDateTime) -> bool {
        self.end(index, EndReason::UserRequested, now)
    }

    /// `vpn-sessiondb logoff ...`: ends every matching session (`Admin Reset`) and
    /// returns how many.
    pub fn logoff(&self, target: &LogoffTarget, now: OffsetDateTime) -> usize {
        let mut state = self.lock();
        let matching: Vec<u32> = state
            .sessions
            .values()
            .filter(|s| target.matches(&s.record))
            .map(|s| s.record.index)
            .collect();
        for index in &matching {
            state.end(*index, EndReason::AdminReset, now);
        }
        matching.len()
    }

    /// Ends every session whose record matches `predicate`, for `reason`; returns
    /// their indexes (a deploy ends sessions their connection profile no longer admits).
    pub fn end_where(
        &self,
        predicate: impl Fn(&SessionRecord) -> bool,
        reason: EndReason,
        now: OffsetDateTime,
    ) -> Vec<u32> {
        let mut state = self.lock();
        let matching: Vec<u32> = state
            .sessions
            .values()
            .filter(|s| predicate(&s.record))
            .map(|s| s.record.index)
            .collect();
        for index in &matching {
            state.end(*index, reason, now);
        }
        matching
    }

    /// Ends sessions past their maximum connect time, idle timeout or disconnected
    /// timeout; returns what ended and why. Run it periodically.
    pub fn expire(&self, now: OffsetDateTime) -> Vec<(u32, EndReason)> {
        let mut state = self.lock();
        let disconnected_timeout = state.settings.disconnected_timeout;
        let ending: Vec<(u32, EndReason)> = state
            .sessions
            .values()
            .filter_map(|s| {
                let reason = if s.expires_at.is_some_and(|at| at <= now) {
                    EndReason::MaxTimeExceeded
                } else if s
                    .detached_since
                    .is_some_and(|since| now - since >= disconnected_timeout)
                {
                    EndReason::LostService
                } else if s.record.idle_timeout_minutes.is_some_and(|minutes| {
                    now - s.last_activity() >= Duration::minutes(i64::from(minutes))
                }) {
                    EndReason::IdleTimeout
                } else {
                    return None;
                };
                Some((s.record.index, reason))
            })
            .collect();
        for (index, reason) in &ending {
            state.end(*index, *reason, now);
        }
        ending
    }

    /// Switches to a new pool configuration (a deploy), all or nothing. Sessions whose
    /// addresses no new pool can hold are ended (`Admin Reset`); their indexes are
    /// returned.
    pub fn apply_pools(
        &self,
        ipv4: &[Ipv4Pool],
        ipv6: &[Ipv6Pool],
        now: OffsetDateTime,
    ) -> Result<Vec<u32>, PoolError> {
        let mut state = self.lock();
        let orphans = state.pools.reconcile(ipv4, ipv6)?;
        let ended: Vec<u32> = state
            .sessions
            .values()
            .filter(|s| {
                s.record
                    .assigned_ipv4
                    .is_some_and(|a| orphans.orphaned_ipv4.contains(&a))
                    || s.record
                        .assigned_ipv6
                        .is_some_and(|a| orphans.orphaned_ipv6.contains(&a))
            })
            .map(|s| s.record.index)
            .collect();
        for index in &ended {
            state.end(*index, EndReason::AdminReset, now);
        }
        Ok(ended)
    }

    /// The live sessions, by index, with current counters and activity times.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.lock()
            .sessions
            .values()
            .map(LiveSession::snapshot)
            .collect()
    }

    /// One live session with current counters.
    pub fn session(&self, index: u32) -> Option<SessionRecord> {
        self.lock().sessions.get(&index).map(LiveSession::snapshot)
    }

    /// Cumulative and peak counters since the agent started.
    pub fn stats(&self) -> SessionStats {
        self.lock().stats
    }

    /// Counters of the session's parent tunnel (the authentication exchange).
    pub fn parent_counters(&self, index: u32) -> Option<Arc<LiveCounters>> {
        self.lock()
            .sessions
            .get(&index)
            .map(|s| Arc::clone(&s.parent_counters))
    }

    /// Session events from `cursor` on (start with 0; pass back `next_cursor`).
    pub fn events_since(&self, cursor: u64) -> EventPage {
        self.lock().events.since(cursor)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // that matters more than losing the whole database, so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
struct State {
    sessions: BTreeMap<u32, LiveSession>,
    by_cookie: HashMap<CookieHash, u32>,
    pools: PoolSet,
    settings: SessionDbSettings,
    next_index: u32,
    stats: SessionStats,
    events: events::EventLog,
}

#[derive(Debug)]
struct LiveSession {
    /// Everything but live counters and activity times, which [`Self::snapshot`] adds.
    record: SessionRecord,
    cookie_hash: CookieHash,
    machine_fingerprint: Option<MachineFingerprint>,
    expires_at: Option<OffsetDateTime>,
    detached_since: Option<OffsetDateTime>,
    parent_counters: Arc<LiveCounters>,
    ssl_counters: Arc<LiveCounters>,
    dtls_counters: Arc<LiveCounters>,
    /// Tunnel number of the attached TLS tunnel.
    attached: Option<u32>,
    /// Tunnel number of the attached DTLS tunnel.
    dtls_attached: Option<u32>,
    stop: watch::Sender<TunnelStop>,
    next_tunnel_number: u32,
}

impl LiveSession {
    fn last_activity(&self) -> OffsetDateTime {
        let mut at = self.parent_counters.last_activity();
        if self.attached.is_some() {
            at = at.max(self.ssl_counters.last_activity());
        }
        if let Some(ssl) = &self.record.ssl {
            at = at.max(ssl.last_activity);
        }
        if self.dtls_attached.is_some() {
            at = at.max(self.dtls_counters.last_activity());
        }
        at.max(self.record.login_time)
    }

    fn snapshot(&self) -> SessionRecord {
        let mut record = self.record.clone();
        record.parent.counters = self.parent_counters.snapshot();
        record.parent.last_activity = self.parent_counters.last_activity();
        if let Some(ssl) = &mut record.ssl {
            ssl.counters = self.ssl_counters.snapshot();
            ssl.last_activity = ssl.last_activity.max(self.ssl_counters.last_activity());
        }
        if let Some(dtls) = &mut record.dtls {
            dtls.counters = self.dtls_counters.snapshot();
            dtls.last_activity = dtls.last_activity.max(self.dtls_counters.last_activity());
        }
        // Inactivity of a detached session counts from when it lost its tunnel.
        record.last_activity = self.detached_since.unwrap_or_else(|| self.last_activity());
        record
    }
}

impl State {
    fn take_index(&mut self) -> u32 {
        loop {
            let index = self.next_index;
            self.next_index = self.next_index.checked_add(1).unwrap_or(1);
            if !self.sessions.contains_key(&index) {
                return index;
            }
        }
    }

    /// Logs off the user's oldest sessions until a new one fits under `limit`.
    fn preempt_for(&mut self, username: &str, limit: u32, now: OffsetDateTime) -> Vec<u32> {
        let mut own: Vec<(OffsetDateTime, u32)> = self
            .sessions
            .values()
            .filter(|s| s.record.username == username)
            .map(|s| (s.record.login_time, s.record.index))
            .collect();
        own.sort_unstable();
        let excess = (own.len() + 1).saturating_sub(limit as usize);
        let preempted: Vec<u32> = own.into_iter().take(excess).map(|(_, i)| i).collect();
        for index in &preempted {
            self.end(*index, EndReason::PortPreempted, now);
        }
        preempted
    }

    fn allocate(
        &mut self,
        new: &NewSession,
    ) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>), LoginError> {
        let ipv4 = if new.ipv4_pools.is_empty() {
            None
        } else {
            Some(self.pools.allocate_ipv4(&new.ipv4_pools)?)
        };
        let ipv6 = if new.ipv6_pools.is_empty() {
            None
        } else {
            match self.pools.allocate_ipv6(&new.ipv6_pools) {
                Ok(address) => Some(address),
                Err(e) => {
                    self.release(ipv4, None);
                    return Err(e.into());
                }
            }
        };
        Ok((ipv4, ipv6))
    }

    fn release(&mut self, ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>) {
        if let Some(address) = ipv4 {
            self.pools.release_ipv4(address);
        }
        if let Some(address) = ipv6 {
            self.pools.release_ipv6(address);
        }
    }

    fn end(&mut self, index: u32, reason: EndReason, now: OffsetDateTime) -> bool {
        let Some(session) = self.sessions.remove(&index) else {
            return false;
        };
        self.by_cookie.remove(&session.cookie_hash);
        self.release(session.record.assigned_ipv4, session.record.assigned_ipv6);
        session.stop.send_replace(TunnelStop::SessionEnded(reason));
        let record = session.snapshot();
        let totals = record.total_counters();
        let duration = now - record.login_time;
        log_session_ended(&record, reason, duration, totals.bytes_tx, totals.bytes_rx);
        self.events.push(
            now,
            index,
            &record.username,
            &record.tunnel_group,
            SessionEventKind::Ended {
                reason,
                duration_secs: duration.whole_seconds(),
                bytes_tx: totals.bytes_tx,
                bytes_rx: totals.bytes_rx,
            },
        );
        true
    }
}

/// Syslog 113039 and 722051, as FTD words them.
fn log_session_started(record: &SessionRecord) {
    tracing::info!(
        target: "syslog",
        syslog_id = 113039,
        "Group <{}> User <{}> IP <{}> AnyConnect parent session started.",
        escaped(&record.group_policy),
        escaped(&record.username),
        record.public_ip
    );
    let ipv4 = record
        .assigned_ipv4
        .map_or_else(|| "0.0.0.0".to_owned(), |a| a.to_string());
    let ipv6 = record
        .assigned_ipv6
        .map_or_else(|| "::".to_owned(), |a| a.to_string());
    tracing::info!(
        target: "syslog",
        syslog_id = 722051,
        "Group <{}> User <{}> IP <{}> IPv4 Address <{ipv4}> IPv6 address <{ipv6}> assigned to session",
        escaped(&record.group_policy),
        escaped(&record.username),
        record.public_ip
    );
}

/// Syslog 113019.
fn log_session_ended(
    record: &SessionRecord,
    reason: EndReason,
    duration: Duration,
    bytes_tx: u64,
    bytes_rx: u64,
) {
    let seconds = duration.whole_seconds().max(0);
    tracing::info!(
        target: "syslog",
        syslog_id = 113019,
        "Group = {}, Username = {}, IP = {}, Session disconnected. Session Type: SSL, Duration: {}h:{:02}m:{:02}s, Bytes xmt: {bytes_tx}, Bytes rcv: {bytes_rx}, Reason: {}",
        escaped(&record.tunnel_group),
        escaped(&record.username),
        record.public_ip,
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        reason.ftd_text()
    );
}

#[cfg(test)]
mod tests;
