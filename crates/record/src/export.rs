//! Exports of a patient's record: CSV of every event (RFC 4180) and an HL7 FHIR R4 `Bundle`.
//!
//! Both are pure functions of the stored events, so they are identical on both backends and easy to
//! check; the FHIR test validates the Bundle with the independent `fhir.resources` package.

use crate::error::RecordError;
use crate::event::{Body, Kind, PatientId, StoredEvent};
use crate::store::{Store, TimelineQuery};
use crate::telemetry::TelemetrySample;
use crate::views::{Infusion, InfusionOutcome, pair_infusions};
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};

/// The CSV header, in column order. Columns are only ever added at the end.
pub const CSV_COLUMNS: [&str; 17] = [
    "id",
    "patient_id",
    "chain_seq",
    "occurred_at_utc",
    "local_offset",
    "occurred_at_local",
    "recorded_at_utc",
    "source",
    "actor",
    "device_id",
    "device_seq",
    "teaching",
    "kind",
    "payload",
    "superseded",
    "prev_hash",
    "hash",
];

const UCUM: &str = "http://unitsofmeasure.org";
const ID_SYSTEM: &str = "urn:infusafe";

/// Which part of a record to export. `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportQuery {
    pub patient: PatientId,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl Store {
    async fn export_events(
        &self,
        query: &ExportQuery,
    ) -> Result<(Vec<StoredEvent>, HashSet<crate::EventId>), RecordError> {
        let events = self
            .timeline(&TimelineQuery {
                patient: query.patient.clone(),
                from: query.from,
                to: query.to,
                kinds: Vec::new(),
                limit: None,
            })
            .await?;
        let superseded = self.superseded(&query.patient).await?;
        Ok((events, superseded))
    }

    /// Every event of the range as CSV, with the samples of the telemetry table (`record_telemetry`)
    /// as rows of kind `telemetry` among them (see [`csv_with_telemetry`]).
    pub async fn export_csv(&self, query: &ExportQuery) -> Result<String, RecordError> {
        let (events, superseded) = self.export_events(query).await?;
        let samples = self
            .telemetry_series(&query.patient, query.from, query.to)
            .await?;
        Ok(csv_with_telemetry(&events, &superseded, &samples))
    }

    /// The range as a FHIR R4 `Bundle` of type `collection`. Patient and Device come from the whole
    /// record (registration and assignment usually precede the range).
    pub async fn export_fhir(&self, query: &ExportQuery) -> Result<Value, RecordError> {
        let (events, superseded) = self.export_events(query).await?;
        let identity = self
            .timeline(&TimelineQuery {
                kinds: Kind::names(&[Kind::PatientRegistered, Kind::DeviceAssigned]),
                ..TimelineQuery::all(query.patient.clone())
            })
            .await?;
        // Practice-pump (teaching) events are not clinical data: the CSV keeps them, marked; FHIR,
        // which other systems import as the patient's care, leaves them out.
        let current: Vec<StoredEvent> = events
            .into_iter()
            .filter(|e| !superseded.contains(&e.id) && !e.teaching)
            .collect();
        Ok(fhir_bundle(
            &query.patient,
            &identity,
            &current,
            Timestamp::now(),
        ))
    }
}

/// RFC 4180: comma separated, CRLF line ends, fields with a comma, quote, CR or LF quoted, quotes doubled.
pub fn csv(events: &[StoredEvent], superseded: &HashSet<crate::EventId>) -> String {
    let mut out = String::new();
    write_row(&mut out, CSV_COLUMNS.iter().map(|c| c.to_string()));
    for e in events {
        write_row(&mut out, event_fields(e, superseded).into_iter());
    }
    out
}

/// The CSV of `events` with the telemetry `samples` that are not already one of the events (legacy
/// `telemetry` events are events; samples of `record_telemetry` are not) as rows of kind `telemetry`, in
/// time order. Such a row has no id, chain position, device sequence number, hashes or recorded time (the
/// table is not part of the hash-chained record); its source is `pump`, its actor the pump, its payload
/// the sample's values as a `telemetry` event carries them (plus `bucket_s` for a downsampled bucket),
/// and its local offset that of the patient's latest event before it (else the first after it, else UTC).
pub fn csv_with_telemetry(
    events: &[StoredEvent],
    superseded: &HashSet<crate::EventId>,
    samples: &[TelemetrySample],
) -> String {
    let in_events: HashSet<(i64, &str)> = events
        .iter()
        .filter(|e| e.kind == Kind::Telemetry.name())
        .map(|e| (e.occurred_at.as_millisecond(), e.device_id.as_str()))
        .collect();
    let rows: Vec<&TelemetrySample> = samples
        .iter()
        .filter(|s| !in_events.contains(&(s.at.as_millisecond(), s.device_id.as_str())))
        .collect();
    let mut out = String::new();
    write_row(&mut out, CSV_COLUMNS.iter().map(|c| c.to_string()));
    let mut rows = rows.into_iter().peekable();
    let mut offset = events.first().map_or(0, |e| e.local_offset_s);
    for e in events {
        while let Some(s) = rows.next_if(|s| s.at < e.occurred_at) {
            write_row(&mut out, sample_fields(s, offset).into_iter());
        }
        offset = e.local_offset_s;
        write_row(&mut out, event_fields(e, superseded).into_iter());
    }
    for s in rows {
        write_row(&mut out, sample_fields(s, offset).into_iter());
    }
    out
}

fn sample_fields(s: &TelemetrySample, local_offset_s: i32) -> [String; 17] {
    let local = match jiff::tz::Offset::from_seconds(local_offset_s) {
        Ok(offset) => s.at.display_with_offset(offset).to_string(),
        Err(_) => s.at.to_string(),
    };
    [
        String::new(),
        s.patient.to_string(),
        String::new(),
        s.at.to_string(),
        offset_text(local_offset_s),
        local,
        String::new(),
        "pump".to_string(),
        s.device_id.clone(),
        s.device_id.clone(),
        String::new(),
        s.teaching.to_string(),
        Kind::Telemetry.name().to_string(),
        crate::chain::canonical_json(&s.payload()),
        false.to_string(),
        String::new(),
        String::new(),
    ]
}

fn event_fields(e: &StoredEvent, superseded: &HashSet<crate::EventId>) -> [String; 17] {
    [
        e.id.to_string(),
        e.patient.to_string(),
        e.chain_seq.to_string(),
        e.occurred_at.to_string(),
        offset_text(e.local_offset_s),
        e.occurred_at_local(),
        e.recorded_at.to_string(),
        e.source.name().to_string(),
        e.actor.clone(),
        e.device_id.clone(),
        e.device_seq.to_string(),
        e.teaching.to_string(),
        e.kind.clone(),
        e.payload.clone(),
        superseded.contains(&e.id).to_string(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ]
}

/// `+01:00`, `-05:30`: the offset as RFC 3339 writes it.
fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

fn write_row(out: &mut String, fields: impl Iterator<Item = String>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&field);
        }
    }
    out.push_str("\r\n");
}

/// A stable `urn:uuid:` for a resource, derived from its kind and our identifier, so re-exports of the
/// same record produce the same references.
fn urn(kind: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{kind}/{key}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    // RFC 9562 version 8 (custom) with the RFC variant bits.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn local_time(e: &StoredEvent) -> String {
    e.occurred_at_local()
}

fn reference(url: &str) -> Value {
    json!({ "reference": url })
}

fn ml(value: f64) -> Value {
    json!({ "value": value, "unit": "mL", "system": UCUM, "code": "mL" })
}

/// The FHIR R4 Bundle for a patient. `identity` holds the registration and device assignment events;
/// `events` the (not superseded) events of the range.
///
/// Entries, in order: the Patient, the Devices, one MedicationAdministration per infusion, the
/// Observations, the Communications. Each resource is built by a pure function of the events; this
/// parent only collects them.
pub fn fhir_bundle(
    patient: &PatientId,
    identity: &[StoredEvent],
    events: &[StoredEvent],
    generated_at: Timestamp,
) -> Value {
    let patient_url = urn("Patient", patient.as_str());
    let mut entries: Vec<Value> = Vec::new();
    entries
        .push(json!({ "fullUrl": patient_url, "resource": patient_resource(patient, identity) }));
    for (device_id, resource) in &devices(&patient_url, identity, events) {
        entries.push(json!({ "fullUrl": urn("Device", device_id), "resource": resource }));
    }
    let mut infusions = BTreeMap::new();
    for infusion in pair_infusions(events, None) {
        infusions.insert(
            infusion.started_event,
            urn(
                "MedicationAdministration",
                &infusion.started_event.to_string(),
            ),
        );
        entries.push(medication_administration(&patient_url, &infusion));
    }
    let resolutions = alarm_resolutions(events);
    for e in events {
        if let Some(resource) = observation(&patient_url, e, &resolutions, &infusions) {
            entries.push(observation_entry(e, resource));
        }
    }
    entries.extend(communications(&patient_url, events));
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": generated_at.to_string(),
        "entry": entries,
    })
}

/// The Patient, named from the latest registration.
fn patient_resource(patient: &PatientId, identity: &[StoredEvent]) -> Value {
    let mut resource = json!({
        "resourceType": "Patient",
        "identifier": [{ "system": format!("{ID_SYSTEM}:patient"), "value": patient.as_str() }],
    });
    for e in identity {
        if let Body::PatientRegistered {
            display_name,
            birth_date,
        } = e.body()
        {
            resource["name"] = json!([{ "text": display_name }]);
            if let Some(date) = birth_date {
                resource["birthDate"] = json!(date.to_string());
            }
        }
    }
    resource
}

/// Every assigned pump, and every pump that produced an infusion or an alarm, registered or not; by
/// device id.
fn devices(
    patient_url: &str,
    identity: &[StoredEvent],
    events: &[StoredEvent],
) -> BTreeMap<String, Value> {
    let mut devices: BTreeMap<String, Value> = BTreeMap::new();
    for e in identity {
        if let Body::DeviceAssigned {
            device_id,
            model,
            serial,
        } = e.body()
        {
            devices.insert(
                device_id.clone(),
                json!({
                    "resourceType": "Device",
                    "identifier": [{ "system": format!("{ID_SYSTEM}:device"), "value": device_id }],
                    "serialNumber": serial,
                    "deviceName": [{ "name": model, "type": "model-name" }],
                    "patient": reference(patient_url),
                }),
            );
        }
    }
    for e in events {
        let is_pump_event = matches!(
            e.body(),
            Body::InfusionStarted { .. } | Body::AlarmRaised { .. }
        );
        if is_pump_event && !devices.contains_key(&e.device_id) {
            devices.insert(
                e.device_id.clone(),
                json!({
                    "resourceType": "Device",
                    "identifier": [{ "system": format!("{ID_SYSTEM}:device"), "value": e.device_id }],
                    "patient": reference(patient_url),
                }),
            );
        }
    }
    devices
}

/// The entry of one infusion: status, period, rate, delivered dose, expected against delivered volume.
fn medication_administration(patient_url: &str, infusion: &Infusion) -> Value {
    let status = match infusion.outcome {
        InfusionOutcome::InProgress => "in-progress",
        InfusionOutcome::Completed => "completed",
        InfusionOutcome::Stopped => "stopped",
        InfusionOutcome::NoEndRecorded => "unknown",
    };
    let offset =
        jiff::tz::Offset::from_seconds(infusion.local_offset_s).unwrap_or(jiff::tz::Offset::UTC);
    let mut period = json!({
        "start": infusion.started_at.display_with_offset(offset).to_string()
    });
    if let Some(end) = infusion.ended_at {
        period["end"] = json!(end.display_with_offset(offset).to_string());
    }
    let mut dosage = json!({
        "rateQuantity": { "value": infusion.rate_ml_per_h, "unit": "mL/h", "system": UCUM, "code": "mL/h" },
    });
    if let Some(delivered) = infusion.delivered_ml {
        dosage["dose"] = ml(delivered);
    }
    let mut notes = vec![json!({
        "text": format!("Expected volume (VTBI) {} mL; delivered {}.", infusion.expected_ml,
            infusion.delivered_ml.map_or("not yet recorded".to_string(), |d| format!("{d} mL")))
    })];
    if infusion.teaching {
        notes.push(json!({ "text": "Practice (teaching) pump: not a clinical administration." }));
    }
    json!({
        "fullUrl": urn("MedicationAdministration", &infusion.started_event.to_string()),
        "resource": {
            "resourceType": "MedicationAdministration",
            "identifier": [{ "system": format!("{ID_SYSTEM}:event"), "value": infusion.started_event.to_string() }],
            "status": status,
            "medicationCodeableConcept": { "text": infusion.drug_id.clone().unwrap_or_else(|| "Infusion (drug not recorded)".into()) },
            "subject": reference(patient_url),
            "effectivePeriod": period,
            "device": [reference(&urn("Device", &infusion.device_id))],
            "note": notes,
            "dosage": dosage,
        }
    })
}

/// When and how each alarm was cleared, by (device, alarm name), oldest first.
type Resolutions = BTreeMap<(String, String), Vec<(Timestamp, String)>>;

fn alarm_resolutions(events: &[StoredEvent]) -> Resolutions {
    let mut resolutions = Resolutions::new();
    for e in events {
        if let Body::AlarmCleared { alarm, resolution } = e.body() {
            resolutions
                .entry((e.device_id.clone(), alarm))
                .or_default()
                .push((
                    e.occurred_at,
                    resolution.unwrap_or_else(|| "cleared".into()),
                ));
        }
    }
    resolutions
}

/// The MedicationAdministration of each infusion in the Bundle, by its `infusion_started` event.
type Infusions = BTreeMap<crate::EventId, String>;

/// The Observation an event becomes, if any: alarms (with how they were resolved), symptom checks,
/// site checks, how the patient felt, and the patient's own log (how I felt, what I see at my site).
fn observation(
    patient_url: &str,
    e: &StoredEvent,
    resolutions: &Resolutions,
    infusions: &Infusions,
) -> Option<Value> {
    match e.body() {
        Body::AlarmRaised {
            alarm,
            priority,
            detail,
        } => Some(alarm_observation(
            patient_url,
            e,
            resolutions,
            &alarm,
            &priority,
            detail,
        )),
        Body::SymptomCheck {
            symptoms,
            triage,
            reasons,
        } => Some(symptom_observation(
            patient_url,
            e,
            &symptoms,
            &triage,
            &reasons,
        )),
        Body::SiteCheck { findings, note } => {
            Some(site_observation(patient_url, e, &findings, note))
        }
        Body::Feeling { rating, text } => feeling_observation(patient_url, e, rating, text),
        Body::HowIFelt {
            compared,
            symptoms,
            text,
            infusion,
        } => Some(how_i_felt_observation(
            patient_url,
            e,
            &compared,
            &symptoms,
            text,
            infusion.and_then(|id| infusions.get(&id)),
        )),
        Body::SiteSeen { signs, text, photo } => {
            Some(site_seen_observation(patient_url, e, &signs, text, photo))
        }
        _ => None,
    }
}

/// The FHIR category of what a patient reports about themselves.
fn survey_category(text: &str) -> Value {
    json!([{
        "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
        }],
        "text": text,
    }])
}

/// One component per reported word (a triage observation or a site sign), each simply present.
fn reported_components(words: &[String]) -> Vec<Value> {
    words
        .iter()
        .map(|w| {
            json!({
                "code": {
                    "coding": [{ "system": format!("{ID_SYSTEM}:observation"), "code": w }],
                    "text": w.replace('_', " "),
                },
                "valueBoolean": true,
            })
        })
        .collect()
}

/// Who wrote a patient-side entry: the patient (a reference to the Patient), or a caregiver (a note, as the
/// Bundle holds no RelatedPerson).
fn author(patient_url: &str, e: &StoredEvent, notes: &mut Vec<Value>) -> Option<Value> {
    match e.source {
        crate::Source::Patient => Some(reference(patient_url)),
        other => {
            notes.push(json!({ "text": format!("Written by the {}.", other.name()) }));
            None
        }
    }
}

/// "How I felt" from the patient's log: better, same or worse, the symptoms as components, their words.
fn how_i_felt_observation(
    patient_url: &str,
    e: &StoredEvent,
    compared: &str,
    symptoms: &[String],
    text: Option<String>,
    infusion: Option<&String>,
) -> Value {
    let mut resource = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": survey_category("patient-reported: how I felt"),
        "code": { "text": "How the patient felt compared with before" },
        "subject": reference(patient_url),
        "effectiveDateTime": local_time(e),
        "valueCodeableConcept": {
            "coding": [{ "system": format!("{ID_SYSTEM}:compared"), "code": compared }],
            "text": compared,
        },
    });
    let mut notes = Vec::new();
    if let Some(text) = text {
        notes.push(json!({ "text": text }));
    }
    if let Some(author) = author(patient_url, e, &mut notes) {
        resource["performer"] = json!([author]);
    }
    if !symptoms.is_empty() {
        resource["component"] = json!(reported_components(symptoms));
    }
    if let Some(url) = infusion {
        resource["partOf"] = json!([reference(url)]);
    }
    if !notes.is_empty() {
        resource["note"] = json!(notes);
    }
    resource
}

/// "What I see at my site" from the patient's log: the signs as components, their words, the photo's
/// fingerprint (the image itself stays with the record).
fn site_seen_observation(
    patient_url: &str,
    e: &StoredEvent,
    signs: &[String],
    text: Option<String>,
    photo: Option<crate::Photo>,
) -> Value {
    let value = if signs.is_empty() {
        "No changes at the site".to_string()
    } else {
        signs
            .iter()
            .map(|s| s.replace('_', " "))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut resource = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": survey_category("patient-reported: my access site"),
        "code": { "text": "What the patient saw at the access site" },
        "subject": reference(patient_url),
        "effectiveDateTime": local_time(e),
        "valueString": value,
    });
    let mut notes = Vec::new();
    if let Some(text) = text {
        notes.push(json!({ "text": text }));
    }
    if let Some(photo) = photo {
        notes.push(json!({ "text": format!(
            "A photo is kept with the record ({}, {} bytes, SHA-256 {}).",
            photo.media_type, photo.bytes, photo.sha256
        ) }));
    }
    if let Some(author) = author(patient_url, e, &mut notes) {
        resource["performer"] = json!([author]);
    }
    if !signs.is_empty() {
        resource["component"] = json!(reported_components(signs));
    }
    if !notes.is_empty() {
        resource["note"] = json!(notes);
    }
    resource
}

fn observation_entry(e: &StoredEvent, mut resource: Value) -> Value {
    resource["identifier"] =
        json!([{ "system": format!("{ID_SYSTEM}:event"), "value": e.id.to_string() }]);
    json!({ "fullUrl": urn("Observation", &e.id.to_string()), "resource": resource })
}

fn alarm_observation(
    patient_url: &str,
    e: &StoredEvent,
    resolutions: &Resolutions,
    alarm: &str,
    priority: &str,
    detail: Option<String>,
) -> Value {
    let resolved = resolutions
        .get(&(e.device_id.clone(), alarm.to_owned()))
        .and_then(|list| list.iter().find(|(at, _)| *at >= e.occurred_at));
    let mut notes = Vec::new();
    if let Some(detail) = detail {
        notes.push(json!({ "text": detail }));
    }
    notes.push(json!({ "text": match resolved {
        Some((at, how)) => format!("Resolved {at}: {how}"),
        None => "Not cleared in this export's range.".to_string(),
    }}));
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{ "text": "device alarm" }],
        "code": {
            "coding": [{ "system": format!("{ID_SYSTEM}:alarm"), "code": alarm }],
            "text": format!("Pump alarm: {}", alarm.replace('_', " ")),
        },
        "subject": reference(patient_url),
        "effectiveDateTime": local_time(e),
        "device": reference(&urn("Device", &e.device_id)),
        "valueCodeableConcept": {
            "coding": [{ "system": format!("{ID_SYSTEM}:alarm-priority"), "code": priority }],
            "text": format!("{priority} priority"),
        },
        "note": notes,
    })
}

fn symptom_observation(
    patient_url: &str,
    e: &StoredEvent,
    symptoms: &[String],
    triage: &str,
    reasons: &[String],
) -> Value {
    let mut notes = Vec::new();
    if !symptoms.is_empty() {
        notes.push(json!({ "text": format!("Symptoms: {}", symptoms.join(", ")) }));
    }
    if !reasons.is_empty() {
        notes.push(json!({ "text": format!("Triage reasons: {}", reasons.join("; ")) }));
    }
    let mut resource = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{ "text": "patient-reported symptom check" }],
        "code": { "text": "Symptom check" },
        "subject": reference(patient_url),
        "effectiveDateTime": local_time(e),
        "valueCodeableConcept": {
            "coding": [{ "system": format!("{ID_SYSTEM}:triage"), "code": triage }],
            "text": triage.replace('_', " "),
        },
    });
    if !notes.is_empty() {
        resource["note"] = json!(notes);
    }
    resource
}

fn site_observation(
    patient_url: &str,
    e: &StoredEvent,
    findings: &[String],
    note: Option<String>,
) -> Value {
    let mut resource = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{ "text": "patient-reported site check" }],
        "code": { "text": "Access site check" },
        "subject": reference(patient_url),
        "effectiveDateTime": local_time(e),
        "valueString": if findings.is_empty() { "No changes at the site".to_string() } else { findings.join(", ") },
    });
    if let Some(note) = note {
        resource["note"] = json!([{ "text": note }]);
    }
    resource
}

/// How the patient felt, as `rating/5: text`; nothing when neither was given.
fn feeling_observation(
    patient_url: &str,
    e: &StoredEvent,
    rating: Option<u8>,
    text: Option<String>,
) -> Option<Value> {
    let mut value = String::new();
    if let Some(rating) = rating {
        value.push_str(&format!("{rating}/5"));
    }
    if let Some(text) = text {
        if !value.is_empty() {
            value.push_str(": ");
        }
        value.push_str(&text);
    }
    if value.is_empty() {
        return None;
    }
    Some(json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{ "text": "patient-reported wellbeing" }],
        "code": { "text": "How the patient felt" },
        "subject": reference(patient_url),
        "effectiveDateTime": local_time(e),
        "valueString": value,
    }))
}

/// Escalations and their answers as Communication entries; an answer points at its escalation
/// (`inResponseTo`) when that was sent earlier in the range.
fn communications(patient_url: &str, events: &[StoredEvent]) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut sent_by_escalation: BTreeMap<String, String> = BTreeMap::new();
    let mut questions: BTreeMap<crate::EventId, String> = BTreeMap::new();
    for e in events {
        match e.body() {
            Body::QuestionAsked { text } => {
                let url = urn("Communication", &e.id.to_string());
                questions.insert(e.id, url.clone());
                let mut resource = json!({
                    "resourceType": "Communication",
                    "identifier": [{ "system": format!("{ID_SYSTEM}:event"), "value": e.id.to_string() }],
                    "status": "completed",
                    "category": [{ "text": "question for the care team" }],
                    "subject": reference(patient_url),
                    "sent": local_time(e),
                    "payload": [{ "contentString": text }],
                });
                let mut notes = Vec::new();
                if let Some(author) = author(patient_url, e, &mut notes) {
                    resource["sender"] = author;
                }
                if !notes.is_empty() {
                    resource["note"] = json!(notes);
                }
                entries.push(json!({ "fullUrl": url, "resource": resource }));
            }
            Body::QuestionAnswered { question, text } => {
                let mut resource = json!({
                    "resourceType": "Communication",
                    "identifier": [{ "system": format!("{ID_SYSTEM}:event"), "value": e.id.to_string() }],
                    "status": "completed",
                    "category": [{ "text": "answer from the care team" }],
                    "subject": reference(patient_url),
                    "recipient": [reference(patient_url)],
                    "sent": local_time(e),
                    "payload": [{ "contentString": text }],
                });
                if let Some(url) = questions.get(&question) {
                    resource["inResponseTo"] = json!([reference(url)]);
                }
                entries.push(json!({ "fullUrl": urn("Communication", &e.id.to_string()), "resource": resource }));
            }
            Body::EscalationSent {
                escalation_id,
                to,
                priority,
                reason,
            } => {
                let url = urn("Communication", &e.id.to_string());
                sent_by_escalation.insert(escalation_id.clone(), url.clone());
                entries.push(json!({
                    "fullUrl": url,
                    "resource": {
                        "resourceType": "Communication",
                        "identifier": [{ "system": format!("{ID_SYSTEM}:escalation"), "value": escalation_id }],
                        "status": "completed",
                        "priority": priority.name(),
                        "subject": reference(patient_url),
                        "sent": local_time(e),
                        "payload": [{ "contentString": format!("Escalation to {to}: {reason}") }],
                    }
                }));
            }
            Body::EscalationAnswered {
                escalation_id,
                by,
                response,
            } => {
                let mut resource = json!({
                    "resourceType": "Communication",
                    "identifier": [{ "system": format!("{ID_SYSTEM}:escalation"), "value": escalation_id }],
                    "status": "completed",
                    "subject": reference(patient_url),
                    "sent": local_time(e),
                    "payload": [{ "contentString": format!("Answered by {by}: {response}") }],
                });
                if let Some(url) = sent_by_escalation.get(&escalation_id) {
                    resource["inResponseTo"] = json!([reference(url)]);
                }
                entries.push(json!({ "fullUrl": urn("Communication", &e.id.to_string()), "resource": resource }));
            }
            _ => {}
        }
    }
    entries
}
