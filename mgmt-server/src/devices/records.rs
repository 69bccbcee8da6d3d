//! Device records (FMC's Devices > Device Management), the one set of rules for both
//! doors: a device has a manager name, a host the manager can reach, an optional NAT ID
//! and, when it is added, the one-time registration key the sensor was given. Adding a
//! device starts its registration in the background; deleting it aborts its queued
//! deploy jobs in the same transaction.

use uuid::Uuid;
use vpn_core::channel::{NatId, RegistrationKey};

use super::Sensors;
use super::endpoint::parse_host;
use crate::db::devices::{self, Device, DeviceInput};
use crate::db::{Actor, DbError, Listed, Page, deployments};
use crate::rules::{self, ChangeError, Problem, Problems};

/// A field of a device a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    HostName,
    NatId,
    RegistrationKey,
}

impl rules::Field for Field {
    fn fmc_path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::HostName => "hostName",
            Self::NatId => "natID",
            Self::RegistrationKey => "regKey",
        }
    }
}

/// Why a device was not stored.
pub type DeviceError = ChangeError<Field>;

/// The input as it is stored: names and addresses without surrounding blanks, an empty
/// NAT ID as none.
pub fn normalized(input: &DeviceInput) -> DeviceInput {
    DeviceInput {
        name: input.name.trim().to_owned(),
        description: input.description.clone(),
        host_name: input.host_name.trim().to_owned(),
        nat_id: input
            .nat_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
    }
}

/// Every rule `input` (normalized) breaks.
pub fn check(input: &DeviceInput) -> Vec<Problem<Field>> {
    let mut problems = Problems::default();
    check_into(&mut problems, input);
    problems.into_vec()
}

fn check_into(problems: &mut Problems<Field>, input: &DeviceInput) {
    problems.check_manager_name(Field::Name, &input.name);
    if let Some(message) = host_problem(&input.host_name) {
        problems.add(Field::HostName, message);
    }
    if let Some(id) = &input.nat_id
        && let Err(e) = NatId::new(id)
    {
        problems.add(Field::NatId, e.to_string());
    }
}

/// What is wrong with a device's host (`host`, `host:port`, `[v6]:port` of its
/// management API), if anything.
pub fn host_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        return Some("is required (the host or host:port of the device's management API)".into());
    }
    let usable = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        && parse_host(host).is_some_and(|e| !e.host.is_empty() && e.port != 0);
    (!usable).then(|| {
        format!("{host:?} is not a host name or address (host or host:port of the device's management API)")
    })
}

/// The registration key, or why it cannot be one.
fn parse_registration_key(problems: &mut Problems<Field>, text: &str) -> Option<RegistrationKey> {
    match RegistrationKey::new(text.trim()) {
        Ok(key) => Some(key),
        Err(e) => {
            problems.add(
                Field::RegistrationKey,
                format!("{e} (the key given to `configure manager add` on the device)"),
            );
            None
        }
    }
}

impl Sensors {
    pub async fn devices(&self, domain_id: Uuid, page: Page) -> Result<Listed<Device>, DbError> {
        devices::list(&self.pool, domain_id, page).await
    }

    pub async fn device(&self, domain_id: Uuid, id: Uuid) -> Result<Device, DbError> {
        devices::get(&self.pool, domain_id, id).await
    }

    /// Adds a device (PENDING) and registers it with `registration_key` in the
    /// background; the outcome is recorded on the device (REGISTERED or FAILED).
    pub async fn add_device(
        &self,
        actor: &Actor,
        domain_id: Uuid,
        input: &DeviceInput,
        registration_key: &str,
    ) -> Result<Device, DeviceError> {
        let input = normalized(input);
        let mut problems = Problems::default();
        check_into(&mut problems, &input);
        let key = parse_registration_key(&mut problems, registration_key);
        let problems = problems.into_vec();
        let key = match key {
            Some(key) if problems.is_empty() => key,
            _ => return Err(DeviceError::Invalid(problems)),
        };
        let mut conn = acquire(&self.pool).await?;
        let device = devices::create(&mut conn, actor, domain_id, &input).await?;
        let sensors = self.clone();
        let (actor, pending) = (actor.clone(), device.clone());
        tokio::spawn(async move {
            match sensors.register_device(&actor, &pending, &key).await {
                Ok(_) => tracing::info!(device = %pending.name, "device registered"),
                Err(e) => {
                    tracing::warn!(device = %pending.name, error = %e, "device registration failed")
                }
            }
        });
        Ok(device)
    }

    pub async fn update_device(
        &self,
        actor: &Actor,
        domain_id: Uuid,
        id: Uuid,
        expected_version: i32,
        input: &DeviceInput,
    ) -> Result<Device, DeviceError> {
        let input = normalized(input);
        let problems = check(&input);
        if !problems.is_empty() {
            return Err(DeviceError::Invalid(problems));
        }
        let mut conn = acquire(&self.pool).await?;
        Ok(devices::update(&mut conn, actor, domain_id, id, expected_version, &input).await?)
    }

    /// Deletes a device and aborts its queued deploy jobs, together or not at all.
    pub async fn delete_device(
        &self,
        actor: &Actor,
        domain_id: Uuid,
        id: Uuid,
        expected_version: Option<i32>,
    ) -> Result<(), DbError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(DbError::sql("begin a transaction"))?;
        deployments::abort_queued_jobs(&mut tx, id, "the device was deleted").await?;
        devices::delete(&mut tx, actor, domain_id, id, expected_version).await?;
        tx.commit()
            .await
            .map_err(DbError::sql("commit a device deletion"))
    }
}

pub(super) async fn acquire(
    pool: &sqlx::PgPool,
) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, DbError> {
    pool.acquire()
        .await
        .map_err(DbError::sql("get a connection"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, host: &str, nat_id: Option<&str>) -> DeviceInput {
        normalized(&DeviceInput {
            name: name.to_owned(),
            description: String::new(),
            host_name: host.to_owned(),
            nat_id: nat_id.map(str::to_owned),
        })
    }

    fn fields(input: &DeviceInput) -> Vec<Field> {
        check(input).iter().map(|p| p.field).collect()
    }

    #[test]
    fn a_device_needs_a_manager_name_and_a_host_the_manager_can_reach() {
        assert!(fields(&input(" ftd-1 ", " 192.0.2.1:8305 ", Some(" "))).is_empty());
        for host in ["ftd.example.com", "[2001:db8::1]:9000", "2001:db8::1"] {
            assert!(fields(&input("ftd", host, None)).is_empty(), "{host}");
        }
        for host in ["", "two words", "ftd:port", "ftd:0", "ftd_1", ":8305"] {
            assert_eq!(
                fields(&input("ftd", host, None)),
                [Field::HostName],
                "{host}"
            );
        }
        assert_eq!(
            fields(&input("ftd one", "192.0.2.1", Some("bad id!"))),
            [Field::Name, Field::NatId]
        );
    }

    #[test]
    fn an_empty_or_bad_registration_key_is_refused_and_names_the_key() {
        for text in ["", "  ", "key with spaces"] {
            let mut problems = Problems::default();
            assert!(
                parse_registration_key(&mut problems, text).is_none(),
                "{text:?}"
            );
            let problems = problems.into_vec();
            assert_eq!(problems[0].field, Field::RegistrationKey);
            assert!(
                problems[0].message.contains("registration key"),
                "{problems:?}"
            );
        }
        let mut problems = Problems::default();
        assert!(parse_registration_key(&mut problems, " cisco123 ").is_some());
    }
}
