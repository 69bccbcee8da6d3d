//! Objects > Address Pools > Edit > Overrides (FMC's "Allow Overrides" table on an
//! object's edit dialog): the range each device hands out instead of the pool's own.
//! The handlers map form fields to the pool service (`objects::pools`), which owns the
//! rules (the range's, then, inside the write, overridable pool and one override per
//! device).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Current;
use super::form::{Errors, parse, sentence};
use super::listing::ListQuery;
use super::objects::{PoolRow, pool_rows, pools_page};
use super::{UiContext, UiError};
use crate::db::pool_overrides::{Ipv4PoolOverrideInput, Ipv6PoolOverrideInput};
use crate::db::{DbError, ObjectKind, Page, devices};
use crate::objects;
use crate::objects::pools::Field as PoolField;
use crate::rules::ChangeError;

/// The "Add override" form. IPv4: `start`, `end`, `mask`; IPv6: `start`, `prefix`,
/// `count`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OverrideForm {
    #[serde(default)]
    csrf: String,
    /// `ipv4` or `ipv6`: which kind of pool the override is for.
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub device: String,
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub end: String,
    #[serde(default)]
    pub mask: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub count: String,
}

impl OverrideForm {
    /// An empty form for `pool`, with the pool's mask (IPv4) or prefix (IPv6).
    fn blank(pool: &PoolRow) -> Self {
        let (mask, prefix) = if pool.family == "ipv6" {
            let prefix = pool.range.rsplit_once('/').map(|(_, p)| p.to_owned());
            (String::new(), prefix.unwrap_or_default())
        } else {
            (pool.size.clone(), String::new())
        };
        Self {
            family: pool.family.to_owned(),
            mask,
            prefix,
            ..Self::default()
        }
    }

    pub(crate) fn has_device(&self, id: &Uuid) -> bool {
        self.device == id.to_string()
    }
}

/// One override of the table.
pub(crate) struct OverrideRow {
    pub id: Uuid,
    pub device: String,
    /// `first-last/mask` (IPv4) or `start/prefix` and a count (IPv6).
    pub range: String,
}

/// A device the override form offers.
pub(crate) struct DeviceChoice {
    pub id: Uuid,
    pub name: String,
}

/// The Overrides part of a pool's edit page.
pub(crate) struct OverridesSection {
    pub pool_id: Uuid,
    pub family: &'static str,
    pub overridable: bool,
    pub rows: Vec<OverrideRow>,
    pub devices: Vec<DeviceChoice>,
    pub form: OverrideForm,
    pub errors: Errors,
}

/// The section of `pool`, with `form` and `errors` (a blank form when `None`).
pub(crate) async fn section(
    context: &UiContext,
    pool: &PoolRow,
    form: Option<OverrideForm>,
    errors: Errors,
) -> Result<OverridesSection, UiError> {
    let (domain, id) = (context.domain_id, pool.id);
    let rows = if pool.family == "ipv6" {
        objects::pools::list_ipv6_overrides(&context.pool, domain, id, Page::ALL)
            .await?
            .items
            .into_iter()
            .map(|o| OverrideRow {
                id: o.id,
                device: o.device.name,
                range: format!(
                    "{}/{} ({} addresses)",
                    o.start, o.prefix_length, o.number_of_addresses
                ),
            })
            .collect()
    } else {
        objects::pools::list_ipv4_overrides(&context.pool, domain, id, Page::ALL)
            .await?
            .items
            .into_iter()
            .map(|o| OverrideRow {
                id: o.id,
                device: o.device.name,
                range: format!("{}-{} mask {}", o.start, o.end, o.mask),
            })
            .collect()
    };
    let devices = devices::list(&context.pool, domain, Page::ALL)
        .await?
        .items
        .into_iter()
        .map(|d| DeviceChoice {
            id: d.id,
            name: d.name,
        })
        .collect();
    Ok(OverridesSection {
        pool_id: id,
        family: pool.family,
        overridable: pool.overridable,
        rows,
        devices,
        form: form.unwrap_or_else(|| OverrideForm::blank(pool)),
        errors,
    })
}

/// `POST /objects/pools/{id}/overrides`: adds an override of pool `id`.
pub(crate) async fn add(
    State(context): State<UiContext>,
    current: Current,
    Path(pool_id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: OverrideForm = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    let mut errors = Errors::default();
    let device_id = field::<Uuid>(&mut errors, "device", &form.device, "Choose a device.");
    let (actor, domain, db) = (current.actor(), context.domain_id, &context.pool);
    let saved = if form.family == "ipv6" {
        let start = field::<Ipv6Addr>(
            &mut errors,
            "start",
            &form.start,
            "Enter the first address, e.g. 2001:db8:2::1.",
        );
        let prefix = field::<u8>(
            &mut errors,
            "prefix",
            &form.prefix,
            "Enter a prefix length, e.g. 64.",
        );
        let count = field::<u32>(
            &mut errors,
            "count",
            &form.count,
            "Enter how many addresses the device hands out.",
        );
        match (device_id, start, prefix, count) {
            (Some(device_id), Some(start), Some(prefix_length), Some(number_of_addresses)) => {
                let input = Ipv6PoolOverrideInput {
                    device_id,
                    start,
                    prefix_length,
                    number_of_addresses,
                };
                Some(
                    objects::pools::create_ipv6_override(db, &actor, domain, pool_id, &input)
                        .await
                        .map(|_| ()),
                )
            }
            _ => None,
        }
    } else {
        let start = field::<Ipv4Addr>(
            &mut errors,
            "start",
            &form.start,
            "Enter the first address, e.g. 10.10.20.1.",
        );
        let end = field::<Ipv4Addr>(
            &mut errors,
            "end",
            &form.end,
            "Enter the last address, e.g. 10.10.20.100.",
        );
        let mask = field::<Ipv4Addr>(
            &mut errors,
            "mask",
            &form.mask,
            "Enter a netmask such as 255.255.255.0.",
        );
        match (device_id, start, end, mask) {
            (Some(device_id), Some(start), Some(end), Some(mask)) => {
                let input = Ipv4PoolOverrideInput {
                    device_id,
                    start,
                    end,
                    mask,
                };
                Some(
                    objects::pools::create_ipv4_override(db, &actor, domain, pool_id, &input)
                        .await
                        .map(|_| ()),
                )
            }
            _ => None,
        }
    };
    match saved {
        Some(Err(ChangeError::Invalid(problems))) => {
            errors.add_problems(&problems, override_form_field);
        }
        Some(Err(ChangeError::Db(e))) => errors = refused(&e).ok_or(e)?,
        Some(Ok(())) | None => {}
    }
    if errors.is_empty() {
        return Ok(Redirect::to(&edit_page(pool_id)).into_response());
    }
    let all = pool_rows(&context).await?;
    let pool = all
        .iter()
        .find(|r| r.id == pool_id)
        .ok_or(UiError::Db(DbError::NotFound {
            kind: ObjectKind::Ipv4AddressPool,
            id: pool_id,
        }))?;
    let pool_form = pool.form();
    let overrides = section(&context, pool, Some(form), errors).await?;
    let page = pools_page(
        &current,
        all,
        &ListQuery::default(),
        pool_form,
        Errors::default(),
        true,
    )?;
    Ok(page.with_overrides(overrides).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    family: String,
}

/// `POST /objects/pools/{id}/overrides/{override}/delete`: removes one override.
pub(crate) async fn remove(
    State(context): State<UiContext>,
    current: Current,
    Path((pool_id, override_id)): Path<(Uuid, Uuid)>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: RemoveForm = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    let (actor, domain, db) = (current.actor(), context.domain_id, &context.pool);
    if form.family == "ipv6" {
        objects::pools::delete_ipv6_override(db, &actor, domain, pool_id, override_id, None)
            .await?;
    } else {
        objects::pools::delete_ipv4_override(db, &actor, domain, pool_id, override_id, None)
            .await?;
    }
    Ok(Redirect::to(&edit_page(pool_id)).into_response())
}

fn edit_page(pool_id: Uuid) -> String {
    format!("/objects/pools?edit={pool_id}#overrides")
}

/// Reads one field; a value that does not parse is an error on that field.
fn field<T: FromStr>(errors: &mut Errors, name: &str, value: &str, hint: &str) -> Option<T> {
    let parsed = value.trim().parse().ok();
    if parsed.is_none() {
        errors.add(name, hint);
    }
    parsed
}

/// The override form field a pool rule is shown on (the range's rules on its first
/// address).
fn override_form_field(field: PoolField) -> &'static str {
    match field {
        PoolField::Mask => "mask",
        PoolField::NumberOfAddresses => "count",
        PoolField::Name | PoolField::Ipv4Range | PoolField::Ipv6Start => "start",
    }
}

/// What the repository refused, on the field it concerns.
fn refused(error: &DbError) -> Option<Errors> {
    let mut errors = Errors::default();
    match error {
        DbError::Conflict { .. } => errors.add(
            "device",
            "This device already has an override of this pool; remove it first to give it another range.",
        ),
        DbError::NotFound {
            kind: ObjectKind::Device,
            ..
        } => errors.add("device", "This device no longer exists; choose another."),
        DbError::Invalid {
            constraint,
            message,
            ..
        } => {
            let (name, text) = if constraint.ends_with("range_ordered") {
                ("start", "The first address comes after the last one.".to_owned())
            } else if constraint.contains("prefix_length") {
                ("prefix", "Enter a prefix length from 1 to 128.".to_owned())
            } else if constraint.contains("number_of_addresses") {
                ("count", "Enter how many addresses (1 or more).".to_owned())
            } else {
                ("form", sentence(message))
            };
            errors.add(name, text);
        }
        _ => return Errors::from_db(error),
    }
    Some(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reversed_range_is_reported_on_the_first_address() {
        let errors = refused(&DbError::Invalid {
            kind: ObjectKind::Ipv4AddressPoolOverride,
            constraint: "ipv4_address_pool_overrides_range_ordered".into(),
            message: "new row violates check constraint".into(),
        })
        .unwrap_or_default();
        assert_eq!(
            errors.of("start"),
            "The first address comes after the last one."
        );
    }

    #[test]
    fn a_second_override_for_a_device_is_reported_on_the_device() {
        let errors = refused(&DbError::Conflict {
            kind: ObjectKind::Ipv4AddressPoolOverride,
            field: "ipv4_address_pool_overrides_once".into(),
            value: "ftd-b".into(),
        })
        .unwrap_or_default();
        assert!(errors.of("device").contains("already has an override"));
    }
}
