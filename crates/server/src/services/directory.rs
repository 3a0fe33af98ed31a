//! Clinics, patients and pumps: creating them validates the input, stores the row, writes the record event that
//! lets the record alone rebuild who was who (`patient_registered`, `device_assigned`), and tells the board.

use record::Kind;
use serde::Serialize;
use serde_json::json;

use crate::domain::{EventDraft, Origin};
use crate::error::AppError;
use crate::ids::{new_id, random_hex, token_hash};
use crate::services::AppState;
use crate::services::now_ms;
use crate::store;

/// Who made a directory change: an admin (by user id) or the system (start-up, demo).
fn origin(actor: Option<&str>) -> Origin {
    if actor.is_some() {
        Origin::Admin
    } else {
        Origin::System
    }
}

/// Create a clinic with a fresh webhook signing secret.
pub async fn create_clinic(state: &AppState, name: &str) -> Result<String, AppError> {
    crate::error::plain_text("name", name)?;
    if name.trim().is_empty() || name.len() > 200 {
        return Err(AppError::invalid(
            "name",
            "give the clinic a name of 1 to 200 characters",
        ));
    }
    let id = new_id("cln");
    store::directory::insert_clinic(&state.db, &id, name.trim(), &random_hex(32), now_ms()).await?;
    Ok(id)
}

/// Create a patient in a clinic; recorded as `patient_registered`.
pub async fn create_patient(
    state: &AppState,
    clinic_id: &str,
    display_name: &str,
    actor: Option<&str>,
) -> Result<String, AppError> {
    crate::error::plain_text("display_name", display_name)?;
    let name = display_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::invalid(
            "display_name",
            "give the patient's name (1 to 200 characters)",
        ));
    }
    let id = new_id("pat");
    store::directory::insert_patient(&state.db, &id, clinic_id, name, now_ms()).await?;
    state
        .journal
        .append_one(EventDraft::new(
            &id,
            Kind::PatientRegistered,
            origin(actor),
            actor,
            now_ms(),
            json!({"display_name": name, "clinic_id": clinic_id}),
        ))
        .await?;
    state.board.with(|b| b.register(&id, clinic_id));
    Ok(id)
}

/// A device token, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct NewDevice {
    pub device_id: String,
    /// The bearer token for the pump link. Only its hash is stored; it cannot be shown again.
    pub token: String,
    /// The id its IHE PCD gateway sends (MSH-3.2), normalized, if set.
    pub pcd_device_id: Option<String>,
}

/// Give a patient a pump (or a practice pump with `teaching`); recorded as `device_assigned`.
pub async fn create_device(
    state: &AppState,
    patient_id: &str,
    label: &str,
    teaching: bool,
    actor: Option<&str>,
) -> Result<NewDevice, AppError> {
    create_device_with_pcd(state, patient_id, label, teaching, None, actor).await
}

/// Longest PCD device id (MSH-3.2 of its gateway).
pub const PCD_DEVICE_ID_MAX: usize = pcd::profile::DEVICE_ID_MAX;

/// A PCD device id as stored and matched: trimmed and upper-cased (an EUI-64 is hex, written either way), 1 to 64
/// characters of A-Z, 0-9, `-`, `.`, `_`, `:`.
pub fn normalize_pcd_device_id(field: &str, id: &str) -> Result<String, AppError> {
    let id = id.trim().to_ascii_uppercase();
    let ok = !id.is_empty()
        && id.len() <= PCD_DEVICE_ID_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    if ok {
        Ok(id)
    } else {
        Err(AppError::invalid(
            field,
            format!(
                "the id the pump's gateway sends in MSH-3.2: 1 to {PCD_DEVICE_ID_MAX} letters, digits, '-', '.', '_' or ':' (an EUI-64 like 0012210000000001)"
            ),
        ))
    }
}

/// Give a patient a pump that may also speak IHE PCD under `pcd_device_id`; recorded as `device_assigned`.
/// Nothing is written when the id is taken (409) or malformed (422).
pub async fn create_device_with_pcd(
    state: &AppState,
    patient_id: &str,
    label: &str,
    teaching: bool,
    pcd_device_id: Option<&str>,
    actor: Option<&str>,
) -> Result<NewDevice, AppError> {
    let pcd_device_id = pcd_device_id
        .map(|id| normalize_pcd_device_id("pcd_device_id", id))
        .transpose()?;
    if let Some(id) = &pcd_device_id
        && store::pcd::holder(&state.db, id).await?.is_some()
    {
        return Err(AppError::Conflict(
            "another pump already has this PCD device id".into(),
        ));
    }
    crate::error::plain_text("label", label)?;
    if label.trim().is_empty() || label.len() > 200 {
        return Err(AppError::invalid(
            "label",
            "give the pump a label of 1 to 200 characters (model and serial)",
        ));
    }
    let device_id = new_id("dev");
    let token = format!("pump_{}", random_hex(32));
    let row = store::directory::DeviceRow {
        id: device_id.clone(),
        patient_id: patient_id.to_string(),
        token_hash: token_hash(&token),
        label: label.trim().to_string(),
        teaching,
        pcd_device_id: pcd_device_id.clone(),
    };
    store::directory::insert_device(&state.db, &row, now_ms()).await?;
    let mut payload = json!({"device_id": device_id, "model": label.trim(), "serial": device_id, "teaching": teaching});
    if let Some(id) = &pcd_device_id {
        payload["pcd_device_id"] = json!(id);
    }
    let event = EventDraft::new(
        patient_id,
        Kind::DeviceAssigned,
        origin(actor),
        actor,
        now_ms(),
        payload,
    )
    .teaching(teaching);
    state.journal.append_one(event).await?;
    Ok(NewDevice {
        device_id,
        token,
        pcd_device_id,
    })
}

/// Set or remove the PCD device id of a pump of the admin's clinic (a gateway installed or replaced). Recorded
/// as `device_pcd_id_set` with who did it.
pub async fn set_pcd_device_id(
    state: &AppState,
    admin: &crate::services::auth::CurrentUser,
    device_id: &str,
    pcd_device_id: Option<&str>,
) -> Result<Option<String>, AppError> {
    crate::services::access::require_admin(admin)?;
    let Some((patient_id, clinic_id, _)) = store::directory::device(&state.db, device_id).await?
    else {
        return Err(AppError::not_found("this pump in your clinic"));
    };
    if clinic_id != admin.clinic_id {
        return Err(AppError::not_found("this pump in your clinic"));
    }
    let id = pcd_device_id
        .map(|id| normalize_pcd_device_id("pcd_device_id", id))
        .transpose()?;
    if let Some(new) = &id
        && let Some(holder) = store::pcd::holder(&state.db, new).await?
        && holder != device_id
    {
        return Err(AppError::Conflict(
            "another pump already has this PCD device id".into(),
        ));
    }
    store::pcd::set_pcd_device_id(&state.db, device_id, id.as_deref()).await?;
    state
        .journal
        .append_one(
            EventDraft::new(
                &patient_id,
                crate::domain::ServerKind::DevicePcdIdSet,
                Origin::Admin,
                Some(&admin.id),
                now_ms(),
                json!({"device_id": device_id, "pcd_device_id": id, "by": admin.id, "by_name": admin.display_name}),
            )
            .for_device(Some(device_id)),
        )
        .await?;
    Ok(id)
}

/// The live pump whose gateway sends this PCD device id, if any.
pub async fn device_by_pcd_id(
    state: &AppState,
    pcd_device_id: &str,
) -> Result<Option<crate::domain::Device>, AppError> {
    let Ok(id) = normalize_pcd_device_id("MSH-3.2", pcd_device_id) else {
        return Ok(None);
    };
    Ok(store::pcd::device_by_pcd_id(&state.db, &id).await?.map(
        |(id, patient_id, clinic_id, teaching)| crate::domain::Device {
            id,
            patient_id,
            clinic_id,
            teaching,
        },
    ))
}

/// Revoke a pump's link token (a lost or replaced pump): the link refuses it from now on; recorded on the
/// patient's record as `device_revoked` with who did it. Revoking twice is harmless.
pub async fn revoke_device(
    state: &AppState,
    admin: &crate::services::auth::CurrentUser,
    device_id: &str,
) -> Result<(), AppError> {
    crate::services::access::require_admin(admin)?;
    let Some((patient_id, clinic_id, revoked)) =
        store::directory::device(&state.db, device_id).await?
    else {
        return Err(AppError::not_found("this pump in your clinic"));
    };
    if clinic_id != admin.clinic_id {
        return Err(AppError::not_found("this pump in your clinic"));
    }
    if revoked {
        return Ok(());
    }
    store::directory::revoke_device(&state.db, device_id, now_ms()).await?;
    state
        .journal
        .append_one(
            EventDraft::new(
                &patient_id,
                crate::domain::ServerKind::DeviceRevoked,
                Origin::Admin,
                Some(&admin.id),
                now_ms(),
                json!({"device_id": device_id, "by": admin.id, "by_name": admin.display_name}),
            )
            .for_device(Some(device_id)),
        )
        .await?;
    Ok(())
}

/// The pump holding this link token, if any.
pub async fn device_by_token(
    state: &AppState,
    token: &str,
) -> Result<Option<crate::domain::Device>, AppError> {
    Ok(
        store::directory::device_by_token(&state.db, &token_hash(token))
            .await?
            .map(
                |(id, patient_id, clinic_id, teaching)| crate::domain::Device {
                    id,
                    patient_id,
                    clinic_id,
                    teaching,
                },
            ),
    )
}

/// `(id, display_name)` of a clinic's patients, by name.
pub async fn clinic_patients(
    state: &AppState,
    clinic_id: &str,
) -> Result<Vec<(String, String)>, AppError> {
    store::directory::clinic_patients(&state.db, clinic_id).await
}

/// A webhook URL the server will call: `https://` with a host and no credentials in it; `http://` only to a
/// loopback address and only when the server was started with `allow_loopback_webhooks` (development).
pub fn check_webhook_url(url: &str, allow_loopback: bool) -> Result<(), AppError> {
    crate::error::plain_text("url", url)?;
    let invalid = |why: &str| AppError::invalid("url", why.to_string());
    if url.len() > 500 {
        return Err(invalid("keep the URL under 500 characters"));
    }
    let uri: http::Uri = url.parse().map_err(|_| {
        invalid("this is not a URL; give one like https://alerts.example.org/infusafe")
    })?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    if authority.contains('@') {
        return Err(invalid(
            "put no user name or password in the URL; the receiver checks the signature header instead",
        ));
    }
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return Err(invalid(
            "the URL needs a host, like https://alerts.example.org/infusafe",
        ));
    };
    match uri.scheme_str() {
        Some("https") if is_internal(host) && !(allow_loopback && is_loopback(host)) => {
            Err(invalid(
                "this address is inside a private network or this machine; give the public https:// address of your alerting service",
            ))
        }
        Some("https") => Ok(()),
        Some("http") if allow_loopback && is_loopback(host) => Ok(()),
        Some("http") if is_loopback(host) => Err(invalid(
            "http:// to this machine is for development only (start the server with --allow-loopback-webhooks); in service use https://",
        )),
        _ => Err(invalid(
            "use an https:// URL; patient alerts never travel unencrypted",
        )),
    }
}

/// A literal address no webhook should reach from the server: this machine, private and link-local networks
/// (cloud metadata services live there), unspecified, multicast and documentation ranges. Names are not resolved
/// here; a name that resolves inward is the clinic admin's configuration.
fn is_internal(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal(&v4.to_string()))
        }
        Err(_) => false,
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Set (or remove, with `None`) a clinic's webhook URL. Returns the signing secret to configure the receiver.
pub async fn set_webhook(
    state: &AppState,
    clinic_id: &str,
    url: Option<&str>,
) -> Result<String, AppError> {
    if let Some(u) = url {
        check_webhook_url(u, state.config.allow_loopback_webhooks)?;
    }
    store::webhooks::set_url(&state.db, clinic_id, url).await
}

#[cfg(test)]
mod tests {
    use super::check_webhook_url;

    #[test]
    fn webhook_urls_are_https_without_credentials() {
        assert!(check_webhook_url("https://alerts.example.org/infusafe", false).is_ok());
        assert!(check_webhook_url("http://alerts.example.org/infusafe", false).is_err());
        assert!(check_webhook_url("http://alerts.example.org/infusafe", true).is_err());
        assert!(check_webhook_url("http://127.0.0.1:9000/hook", false).is_err());
        assert!(check_webhook_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_webhook_url("http://[::1]:9000/hook", true).is_ok());
        assert!(check_webhook_url("http://127.0.0.1:22/", false).is_err());
        assert!(check_webhook_url("https://user:secret@alerts.example.org/", false).is_err());
        assert!(check_webhook_url("ftp://alerts.example.org/", false).is_err());
        assert!(check_webhook_url("https:///nohost", false).is_err());
        for internal in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.5/hook",
            "https://192.168.1.1/hook",
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://[fd00::1]/hook",
            "https://[::ffff:10.0.0.1]/hook",
            "https://localhost/hook",
        ] {
            assert!(check_webhook_url(internal, false).is_err(), "{internal}");
        }
        assert!(check_webhook_url("https://127.0.0.1:9443/hook", true).is_ok());
        assert!(check_webhook_url("https://203.0.114.7/hook", false).is_ok());
    }
}
