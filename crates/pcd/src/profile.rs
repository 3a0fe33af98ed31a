//! The profile as Infusafe implements it: ORU^R01 device observations (IHE PCD-01), ORU^R40 alarm reports (IHE
//! PCD-04, Alert Communication Management) and the ACK (original mode: MSA AA/AE/AR, with an ERR segment that
//! says why). Parsing checks the whole message before anything is returned, so a caller never acts on half of
//! one. docs/api.md describes every segment and field used here.

use jiff::Timestamp;

use crate::codes::{self, LOCAL, MDC, Mdc};
use crate::hl7::{Hl7Error, Message, Segment, SegmentBuilder};

/// The one HL7 version spoken (MSH-12).
pub const VERSION: &str = "2.6";
/// MSH-21 profile ids.
pub const PROFILE_PCD01: [&str; 4] = ["IHE_PCD_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.4.1", "ISO"];
pub const PROFILE_PCD04: [&str; 4] = [
    "IHE_PCD_ACM_001",
    "IHE PCD",
    "1.3.6.1.4.1.19376.1.6.4.4",
    "ISO",
];
/// Longest message control id accepted (MSH-10 is ST(199) in v2.6).
pub const CONTROL_ID_MAX: usize = 199;
/// Longest device id accepted (MSH-3.2).
pub const DEVICE_ID_MAX: usize = 64;
/// Longest alarm text kept.
pub const ALERT_TEXT_MAX: usize = 500;

/// A sending or receiving application (HD: namespace ^ universal id ^ universal id type), e.g. a pump gateway
/// `INFUSAFE_PUMP^0012210000000001^EUI-64`. Infusafe matches a device by the universal id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub app: String,
    pub id: String,
    pub id_type: String,
    pub facility: String,
}

impl Party {
    /// A pump gateway known by its EUI-64.
    pub fn gateway(eui64: &str) -> Party {
        Party {
            app: "INFUSAFE_PUMP".into(),
            id: eui64.into(),
            id_type: "EUI-64".into(),
            facility: "HOME".into(),
        }
    }

    /// The Infusafe server.
    pub fn infusafe() -> Party {
        Party {
            app: "INFUSAFE".into(),
            id: "infusafe".into(),
            id_type: "L".into(),
            facility: "INFUSAFE".into(),
        }
    }

    fn of(msh: &Segment, field: usize, facility_field: usize) -> Result<Party, Hl7Error> {
        Ok(Party {
            app: msh.component(field, 1)?,
            id: msh.component(field, 2)?,
            id_type: msh.component(field, 3)?,
            facility: msh.value(facility_field)?,
        })
    }
}

/// MSA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Accepted (stored, or a duplicate of a message already stored).
    AA,
    /// Application error: the message was read but could not be applied (unknown device or code, bad value).
    AE,
    /// Rejected: not a message Infusafe reads (version, type, structure).
    AR,
}

impl AckCode {
    pub fn name(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
        }
    }

    pub fn from_name(name: &str) -> Option<AckCode> {
        match name {
            "AA" | "CA" => Some(AckCode::AA),
            "AE" | "CE" => Some(AckCode::AE),
            "AR" | "CR" => Some(AckCode::AR),
            _ => None,
        }
    }
}

/// HL7 table 0357 (message error condition codes) as used in ERR-3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    pub const SEGMENT_SEQUENCE: ErrorCode = ErrorCode(100);
    pub const REQUIRED_FIELD_MISSING: ErrorCode = ErrorCode(101);
    pub const DATA_TYPE: ErrorCode = ErrorCode(102);
    pub const TABLE_VALUE_NOT_FOUND: ErrorCode = ErrorCode(103);
    pub const UNSUPPORTED_MESSAGE_TYPE: ErrorCode = ErrorCode(200);
    pub const UNSUPPORTED_EVENT_CODE: ErrorCode = ErrorCode(201);
    pub const UNSUPPORTED_PROCESSING_ID: ErrorCode = ErrorCode(202);
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(203);
    pub const UNKNOWN_KEY: ErrorCode = ErrorCode(204);
    pub const APPLICATION_INTERNAL: ErrorCode = ErrorCode(207);

    pub fn text(self) -> &'static str {
        match self.0 {
            100 => "Segment sequence error",
            101 => "Required field missing",
            102 => "Data type error",
            103 => "Table value not found",
            200 => "Unsupported message type",
            201 => "Unsupported event code",
            202 => "Unsupported processing id",
            203 => "Unsupported version id",
            204 => "Unknown key identifier",
            205 => "Duplicate key identifier",
            206 => "Application record locked",
            _ => "Application internal error",
        }
    }
}

/// Where in the message an error is (ERR-2): segment id, its occurrence, field, component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub segment: String,
    pub occurrence: usize,
    pub field: usize,
    pub component: usize,
}

/// Why a message is not accepted: the ACK code, the HL7 error code, where, and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {} ({}): {message}", ack.name(), code.0, code.text())]
pub struct Rejection {
    pub ack: AckCode,
    pub code: ErrorCode,
    pub location: Option<Location>,
    pub message: String,
}

impl Rejection {
    pub fn new(ack: AckCode, code: ErrorCode, message: impl Into<String>) -> Rejection {
        Rejection {
            ack,
            code,
            location: None,
            message: message.into(),
        }
    }

    pub fn at(mut self, segment: &str, occurrence: usize, field: usize, component: usize) -> Self {
        self.location = Some(Location {
            segment: segment.into(),
            occurrence,
            field,
            component,
        });
        self
    }
}

/// What the MSH says, enough to answer any message that has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub sender: Party,
    pub control_id: String,
    /// MSH-9.2: `R01`, `R40`, …
    pub trigger: String,
}

/// A device observation report (ORU^R01, PCD-01): what the pump is doing now.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub sender: Party,
    pub control_id: String,
    pub sent_at: Timestamp,
    /// The patient, when the sender knows it (PID-3, PID-5); Infusafe binds a device to its patient itself.
    pub patient: Option<(String, String)>,
    /// `pump::State::name()`.
    pub state: String,
    pub rate_ml_per_h: f64,
    pub vtbi_ml: Option<f64>,
    pub remaining_ml: f64,
    pub delivered_ml: f64,
    pub minutes_left: Option<f64>,
    pub battery_percent: f64,
    pub battery_minutes_left: Option<f64>,
    pub downstream_pressure_mmhg: Option<f64>,
    pub mains_present: Option<bool>,
}

/// MDC_ATTR_EVENT_PHASE values (IHE PCD ACM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Start,
    StartOnly,
    Continue,
    End,
    Present,
    Update,
    Escalate,
    InactivationChange,
    Deescalate,
    Reset,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::Start,
        Phase::StartOnly,
        Phase::Continue,
        Phase::End,
        Phase::Present,
        Phase::Update,
        Phase::Escalate,
        Phase::InactivationChange,
        Phase::Deescalate,
        Phase::Reset,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::StartOnly => "start-only",
            Phase::Continue => "continue",
            Phase::End => "end",
            Phase::Present => "present",
            Phase::Update => "update",
            Phase::Escalate => "escalate",
            Phase::InactivationChange => "inactivation-change",
            Phase::Deescalate => "deescalate",
            Phase::Reset => "reset",
        }
    }

    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// MDC_ATTR_ALARM_STATE values.
pub const ALARM_STATES: [&str; 3] = ["inactive", "active", "latched"];

/// MDC_ATTR_ALARM_INACTIVATION_STATE values (IHE PCD ACM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactivation {
    Enabled,
    AudioPaused,
    AudioOff,
    AlarmPaused,
    AlarmOff,
    AlertAcknowledged,
}

impl Inactivation {
    pub const ALL: [Inactivation; 6] = [
        Inactivation::Enabled,
        Inactivation::AudioPaused,
        Inactivation::AudioOff,
        Inactivation::AlarmPaused,
        Inactivation::AlarmOff,
        Inactivation::AlertAcknowledged,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Inactivation::Enabled => "enabled",
            Inactivation::AudioPaused => "audio-paused",
            Inactivation::AudioOff => "audio-off",
            Inactivation::AlarmPaused => "alarm-paused",
            Inactivation::AlarmOff => "alarm-off",
            Inactivation::AlertAcknowledged => "alert-acknowledged",
        }
    }

    pub fn from_name(name: &str) -> Option<Inactivation> {
        Inactivation::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// MDC_ATTR_ALARM_PRIORITY: PH, PM, PL (and PN, no priority, which Infusafe does not record).
pub fn priority_code(p: pump::Priority) -> &'static str {
    match p {
        pump::Priority::High => "PH",
        pump::Priority::Medium => "PM",
        pump::Priority::Low => "PL",
    }
}

pub fn priority_of(code: &str) -> Option<pump::Priority> {
    match code {
        "PH" => Some(pump::Priority::High),
        "PM" => Some(pump::Priority::Medium),
        "PL" => Some(pump::Priority::Low),
        _ => None,
    }
}

/// An alarm report (ORU^R40, PCD-04): one phase of one alarm's life.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmReport {
    pub sender: Party,
    pub control_id: String,
    pub sent_at: Timestamp,
    pub patient: Option<(String, String)>,
    /// This occurrence of the alarm (OBR-3, the filler order number), the same in every phase.
    pub alarm_id: String,
    /// Our alarm name (`occlusion_downstream`, …).
    pub alarm: String,
    pub phase: Phase,
    /// `inactive`, `active` or `latched`.
    pub state: String,
    pub inactivation: Inactivation,
    pub priority: Option<pump::Priority>,
    pub text: Option<String>,
}

/// A message Infusafe accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Observation(Observation),
    Alarm(AlarmReport),
}

impl Inbound {
    pub fn sender(&self) -> &Party {
        match self {
            Inbound::Observation(o) => &o.sender,
            Inbound::Alarm(a) => &a.sender,
        }
    }

    pub fn control_id(&self) -> &str {
        match self {
            Inbound::Observation(o) => &o.control_id,
            Inbound::Alarm(a) => &a.control_id,
        }
    }
}

/// HL7 DTM with milliseconds and offset: `20261127141341.123+0000`.
pub fn dtm(t: Timestamp) -> String {
    t.strftime("%Y%m%d%H%M%S%.3f+0000").to_string()
}

/// Read an HL7 DTM (`YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`, at least to the minute; no offset means UTC).
pub fn parse_dtm(text: &str) -> Option<Timestamp> {
    let (main, offset) = match text.find(['+', '-']) {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    };
    let (digits, fraction) = match main.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (main, None),
    };
    if !(12..=14).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<i32>().ok());
    let (y, mo, d, h, mi) = (n(0..4)?, n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?);
    let s = if digits.len() == 14 { n(12..14)? } else { 0 };
    let nanos = match fraction {
        Some(f) if !f.is_empty() && f.len() <= 4 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<9}").parse::<i32>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let dt = jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(d).ok()?,
        i8::try_from(h).ok()?,
        i8::try_from(mi).ok()?,
        i8::try_from(s).ok()?,
        nanos,
    )
    .ok()?;
    let offset_s = match offset {
        None => 0,
        Some(o) if o.len() == 5 && o[1..].bytes().all(|b| b.is_ascii_digit()) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let hh: i32 = o[1..3].parse().ok()?;
            let mm: i32 = o[3..5].parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
        Some(_) => return None,
    };
    let offset = jiff::tz::Offset::from_seconds(offset_s).ok()?;
    offset.to_timestamp(dt).ok()
}

fn msh(sender: &Party, to: &Party, at: Timestamp, kind: [&str; 3], control_id: &str) -> String {
    SegmentBuilder::new("MSH")
        .raw(2, crate::hl7::ENCODING_CHARACTERS)
        .c(3, &[&sender.app, &sender.id, &sender.id_type])
        .f(4, &sender.facility)
        .c(5, &[&to.app, &to.id, &to.id_type])
        .f(6, &to.facility)
        .f(7, &dtm(at))
        .c(9, &kind)
        .f(10, control_id)
        .f(11, "P")
        .f(12, VERSION)
        .build()
}

fn msh_pcd(
    sender: &Party,
    at: Timestamp,
    kind: [&str; 3],
    control_id: &str,
    profile: [&str; 4],
) -> String {
    let base = msh(sender, &Party::infusafe_receiver(), at, kind, control_id);
    let extra = SegmentBuilder::new("XXX")
        .f(3, "AL")
        .f(4, "NE")
        .f(6, "UNICODE UTF-8")
        .c(9, &profile)
        .build();
    // MSH-13..21 appended after MSH-12.
    format!("{base}{}", &extra[3..])
}

impl Party {
    /// Whoever receives a device's messages (the Infusafe server or an alarm manager).
    fn infusafe_receiver() -> Party {
        Party {
            app: "INFUSAFE".into(),
            id: String::new(),
            id_type: String::new(),
            facility: "INFUSAFE".into(),
        }
    }
}

fn pid_pv1(patient: &Option<(String, String)>) -> [String; 2] {
    let pid = match patient {
        Some((id, name)) => SegmentBuilder::new("PID")
            .c(3, &[id, "", "", "INFUSAFE", "PI"])
            .c(5, &[name, "", "", "", "", "", "D"])
            .build(),
        None => SegmentBuilder::new("PID")
            .c(3, &["UNKNOWN", "", "", "INFUSAFE", "PI"])
            .c(5, &["", "", "", "", "", "", "U"])
            .build(),
    };
    [pid, SegmentBuilder::new("PV1").f(2, "N").build()]
}

fn equipment(p: &Party) -> [&str; 4] {
    [&p.id, "", &p.id, &p.id_type]
}

fn obx(set_id: usize, value_type: &str, code: [&str; 3], sub_id: &str) -> SegmentBuilder {
    SegmentBuilder::new("OBX")
        .f(1, &set_id.to_string())
        .f(2, value_type)
        .c(3, &code)
        .f(4, sub_id)
}

fn mdc_code(m: Mdc) -> [&'static str; 3] {
    [m.code, m.name, MDC]
}

fn number(v: f64) -> String {
    let rounded = (v * 1000.0).round() / 1000.0;
    format!("{rounded}")
}

/// An ORU^R01 for an observation.
pub fn build_observation(o: &Observation) -> String {
    let at = dtm(o.sent_at);
    let mut segs = vec![msh_pcd(
        &o.sender,
        o.sent_at,
        ["ORU", "R01", "ORU_R01"],
        &o.control_id,
        PROFILE_PCD01,
    )];
    segs.extend(pid_pv1(&o.patient));
    segs.push(
        SegmentBuilder::new("OBR")
            .f(1, "1")
            .c(
                2,
                &[
                    &o.control_id,
                    &o.sender.app,
                    &o.sender.id,
                    &o.sender.id_type,
                ],
            )
            .c(
                3,
                &[
                    &o.control_id,
                    &o.sender.app,
                    &o.sender.id,
                    &o.sender.id_type,
                ],
            )
            .c(4, &mdc_code(codes::DEV_PUMP_INFUS_MDS))
            .f(7, &at)
            .build(),
    );
    let mut rows: Vec<SegmentBuilder> = vec![
        obx(0, "", mdc_code(codes::DEV_PUMP_INFUS_MDS), "1.0.0.0")
            .f(11, "X")
            .c(18, &equipment(&o.sender)),
    ];
    let infusing = matches!(o.state.as_str(), "infusing" | "kvo");
    rows.push(
        obx(0, "CWE", mdc_code(codes::PUMP_INFUSING_STATUS), "1.1.1.1").c(
            5,
            &[
                "",
                if infusing {
                    "pump-status-infusing"
                } else {
                    "pump-status-not-infusing"
                },
            ],
        ),
    );
    rows.push(
        obx(
            0,
            "ST",
            [codes::LOCAL_PUMP_STATE, "pump state", LOCAL],
            "1.1.1.2",
        )
        .f(5, &o.state),
    );
    let nm = |code: [&str; 3], sub: &str, v: f64, unit: [&str; 3]| {
        obx(0, "NM", code, sub)
            .f(5, &number(v))
            .c(6, &[unit[0], unit[1], MDC, unit[2], unit[2], "UCUM"])
    };
    let u = |t: (&'static str, &'static str, &'static str)| [t.0, t.1, t.2];
    rows.push(nm(
        mdc_code(codes::FLOW_FLUID_PUMP_CURRENT),
        "1.1.1.3",
        o.rate_ml_per_h,
        u(codes::DIM_ML_PER_H),
    ));
    if let Some(v) = o.vtbi_ml {
        rows.push(nm(
            mdc_code(codes::VOL_FLUID_TBI),
            "1.1.2.1",
            v,
            u(codes::DIM_ML),
        ));
    }
    rows.push(nm(
        mdc_code(codes::VOL_FLUID_TBI_REMAIN),
        "1.1.2.2",
        o.remaining_ml,
        u(codes::DIM_ML),
    ));
    rows.push(nm(
        mdc_code(codes::VOL_FLUID_DELIV_TOTAL),
        "1.1.2.3",
        o.delivered_ml,
        u(codes::DIM_ML),
    ));
    if let Some(v) = o.minutes_left {
        rows.push(nm(
            mdc_code(codes::TIME_PD_REMAIN),
            "1.1.2.4",
            v,
            u(codes::DIM_MIN),
        ));
    }
    if let Some(v) = o.downstream_pressure_mmhg {
        rows.push(
            obx(
                0,
                "NM",
                [
                    codes::LOCAL_DOWNSTREAM_PRESSURE,
                    "downstream pressure",
                    LOCAL,
                ],
                "1.1.3.1",
            )
            .f(5, &number(v))
            .c(6, &[codes::UCUM_MMHG, codes::UCUM_MMHG, "UCUM"]),
        );
    }
    rows.push(nm(
        mdc_code(codes::ATTR_VAL_BATT_CHARGE),
        "1.2.0.1",
        o.battery_percent,
        u(codes::DIM_PERCENT),
    ));
    if let Some(v) = o.battery_minutes_left {
        rows.push(nm(
            mdc_code(codes::ATTR_TIME_BATT_REMAIN),
            "1.2.0.2",
            v,
            u(codes::DIM_MIN),
        ));
    }
    if let Some(mains) = o.mains_present {
        rows.push(
            obx(0, "ST", mdc_code(codes::ATTR_POWER_STAT), "1.2.0.3")
                .f(5, if mains { "onMains(0)" } else { "onBattery(1)" }),
        );
    }
    for (i, row) in rows.into_iter().enumerate() {
        let status = if i == 0 { "X" } else { "R" };
        segs.push(
            row.f(1, &(i + 1).to_string())
                .f(11, status)
                .f(14, &at)
                .build(),
        );
    }
    segs.join("\r") + "\r"
}

/// An ORU^R40 for one phase of an alarm.
pub fn build_alarm(a: &AlarmReport) -> String {
    let at = dtm(a.sent_at);
    let mut segs = vec![msh_pcd(
        &a.sender,
        a.sent_at,
        ["ORU", "R40", "ORU_R40"],
        &a.control_id,
        PROFILE_PCD04,
    )];
    segs.extend(pid_pv1(&a.patient));
    segs.push(
        SegmentBuilder::new("OBR")
            .f(1, "1")
            .c(
                2,
                &[
                    &a.control_id,
                    &a.sender.app,
                    &a.sender.id,
                    &a.sender.id_type,
                ],
            )
            .c(
                3,
                &[&a.alarm_id, &a.sender.app, &a.sender.id, &a.sender.id_type],
            )
            .c(4, &mdc_code(codes::EVT_ALARM))
            .f(7, &at)
            .build(),
    );
    let condition: Vec<&str> = match codes::alarm_code(&a.alarm).and_then(|c| c.mdc) {
        Some(m) => vec![m.code, m.name, MDC, &a.alarm, &a.alarm, LOCAL],
        None => vec![&a.alarm, &a.alarm, LOCAL],
    };
    let mut rows = vec![
        obx(0, "CWE", mdc_code(codes::EVT_ALARM), "1.0.0.0.1")
            .c(5, &condition)
            .c(18, &equipment(&a.sender)),
        obx(0, "CWE", mdc_code(codes::ATTR_ALERT_SOURCE), "1.0.0.0.2")
            .c(5, &mdc_code(codes::DEV_PUMP_INFUS_MDS)),
        obx(0, "ST", mdc_code(codes::ATTR_EVENT_PHASE), "1.0.0.0.3").f(5, a.phase.name()),
        obx(0, "ST", mdc_code(codes::ATTR_ALARM_STATE), "1.0.0.0.4").f(5, &a.state),
        obx(
            0,
            "ST",
            mdc_code(codes::ATTR_ALARM_INACTIVATION_STATE),
            "1.0.0.0.5",
        )
        .f(5, a.inactivation.name()),
    ];
    if let Some(p) = a.priority {
        rows.push(
            obx(0, "ST", mdc_code(codes::ATTR_ALARM_PRIORITY), "1.0.0.0.6").f(5, priority_code(p)),
        );
    }
    // Every Infusafe alarm is about the device, not a physiological reading: a technical alert (ST).
    rows.push(obx(0, "ST", mdc_code(codes::ATTR_ALERT_TYPE), "1.0.0.0.7").f(5, "ST"));
    if let Some(text) = &a.text {
        rows.push(obx(0, "ST", mdc_code(codes::ATTR_ALERT_TEXT), "1.0.0.0.8").f(5, text));
    }
    for (i, row) in rows.into_iter().enumerate() {
        segs.push(row.f(1, &(i + 1).to_string()).f(11, "F").f(14, &at).build());
    }
    segs.join("\r") + "\r"
}

/// The ACK answering a message: `result` is `Ok` for AA or the rejection. `to` is the original sender (from the
/// message's MSH when it could be read), `control_id` the message's MSH-10 (empty when unreadable).
pub fn ack(
    to: Option<&Header>,
    ack_control_id: &str,
    at: Timestamp,
    result: Result<(), &Rejection>,
) -> String {
    let empty = Party {
        app: String::new(),
        id: String::new(),
        id_type: String::new(),
        facility: String::new(),
    };
    let (receiver, control_id, trigger) = match to {
        Some(h) if !h.trigger.is_empty() => {
            (&h.sender, non_empty(&h.control_id), h.trigger.as_str())
        }
        Some(h) => (&h.sender, non_empty(&h.control_id), "R01"),
        // MSH-9.2 is required: a message too broken to name its trigger is answered as the common case, R01.
        None => (&empty, UNKNOWN_CONTROL_ID, "R01"),
    };
    let mut segs = vec![msh(
        &Party::infusafe(),
        receiver,
        at,
        ["ACK", trigger, "ACK"],
        ack_control_id,
    )];
    let code = match result {
        Ok(()) => AckCode::AA,
        Err(r) => r.ack,
    };
    segs.push(
        SegmentBuilder::new("MSA")
            .f(1, code.name())
            .f(2, control_id)
            .build(),
    );
    if let Err(r) = result {
        let mut err = SegmentBuilder::new("ERR");
        if let Some(l) = &r.location {
            err = err.c(
                2,
                &[
                    &l.segment,
                    &l.occurrence.to_string(),
                    &l.field.to_string(),
                    "",
                    &l.component.to_string(),
                ],
            );
        }
        err = err
            .c(3, &[&r.code.0.to_string(), r.code.text(), "HL70357"])
            .f(4, "E")
            .f(7, &r.message);
        segs.push(err.build());
    }
    segs.join("\r") + "\r"
}

/// MSA-2 (required) when the message's own control id could not be read.
pub const UNKNOWN_CONTROL_ID: &str = "unknown";

fn non_empty(control_id: &str) -> &str {
    if control_id.is_empty() {
        UNKNOWN_CONTROL_ID
    } else {
        control_id
    }
}

/// What an ACK says: MSA-1, MSA-2 and the ERR-3 code with ERR-7's text, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckReply {
    pub code: AckCode,
    pub control_id: String,
    pub error: Option<(u16, String)>,
}

/// Read an ACK.
pub fn parse_ack(text: &str) -> Result<AckReply, String> {
    let m = Message::parse(text).map_err(|e| e.to_string())?;
    if m.msh().value(9).map_err(|e| e.to_string())? != "ACK" {
        return Err("not an ACK (MSH-9)".into());
    }
    let msa = m.first("MSA").ok_or("no MSA segment")?;
    let code_text = msa.value(1).map_err(|e| e.to_string())?;
    let code = AckCode::from_name(&code_text).ok_or_else(|| format!("MSA-1 {code_text:?}"))?;
    let error = match m.first("ERR") {
        Some(err) => Some((
            err.value(3)
                .map_err(|e| e.to_string())?
                .parse()
                .unwrap_or(0),
            err.value(7).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    Ok(AckReply {
        code,
        control_id: msa.value(2).map_err(|e| e.to_string())?,
        error,
    })
}

/// Read the MSH of a message far enough to answer it, and check what makes it one Infusafe reads at all:
/// version 2.6, processing id P or T, a control id, and ORU^R01 or ORU^R40.
pub fn parse_header(m: &Message) -> Result<Header, Rejection> {
    let msh = m.msh();
    let bad = |e: Hl7Error| Rejection::new(AckCode::AR, ErrorCode::DATA_TYPE, e.to_string());
    let header = Header {
        sender: Party::of(msh, 3, 4).map_err(bad)?,
        control_id: msh.value(10).map_err(bad)?,
        trigger: msh.component(9, 2).map_err(bad)?,
    };
    Ok(header)
}

/// Check the header of a parsed message (see [`parse_header`]).
fn check_header(m: &Message, h: &Header) -> Result<Timestamp, Rejection> {
    let msh = m.msh();
    let rej = |code: ErrorCode, field: usize, comp: usize, text: String| {
        Rejection::new(AckCode::AR, code, text).at("MSH", 1, field, comp)
    };
    if h.control_id.is_empty() || h.control_id.len() > CONTROL_ID_MAX {
        return Err(rej(
            ErrorCode::REQUIRED_FIELD_MISSING,
            10,
            1,
            format!("MSH-10 (message control id) must be 1 to {CONTROL_ID_MAX} characters"),
        ));
    }
    let version = msh.value(12).unwrap_or_default();
    if version != VERSION {
        return Err(rej(
            ErrorCode::UNSUPPORTED_VERSION,
            12,
            1,
            format!("HL7 version {version:?} is not supported; send {VERSION} (IHE PCD)"),
        ));
    }
    let processing = msh.value(11).unwrap_or_default();
    if !matches!(processing.as_str(), "P" | "T") {
        return Err(rej(
            ErrorCode::UNSUPPORTED_PROCESSING_ID,
            11,
            1,
            format!("processing id {processing:?}: use P (production) or T (training)"),
        ));
    }
    let kind = msh.value(9).unwrap_or_default();
    if kind != "ORU" {
        return Err(rej(
            ErrorCode::UNSUPPORTED_MESSAGE_TYPE,
            9,
            1,
            format!("message type {kind:?}: Infusafe reads ORU^R01 (PCD-01) and ORU^R40 (PCD-04)"),
        ));
    }
    if !matches!(h.trigger.as_str(), "R01" | "R40") {
        return Err(rej(
            ErrorCode::UNSUPPORTED_EVENT_CODE,
            9,
            2,
            format!("trigger event {:?}: Infusafe reads R01 and R40", h.trigger),
        ));
    }
    if h.sender.id.is_empty() || h.sender.id.len() > DEVICE_ID_MAX {
        return Err(Rejection::new(
            AckCode::AE,
            ErrorCode::REQUIRED_FIELD_MISSING,
            format!(
                "MSH-3.2 must carry the device id (1 to {DEVICE_ID_MAX} characters, e.g. an EUI-64) that the clinic registered"
            ),
        )
        .at("MSH", 1, 3, 2));
    }
    let sent = msh.value(7).unwrap_or_default();
    parse_dtm(&sent).ok_or_else(|| {
        Rejection::new(
            AckCode::AE,
            ErrorCode::DATA_TYPE,
            format!("MSH-7 {sent:?} is not an HL7 date and time (YYYYMMDDHHMMSS[.SSS][+ZZZZ])"),
        )
        .at("MSH", 1, 7, 1)
    })
}

/// A message refused: its header when it could be read (to address the ACK) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub header: Option<Header>,
    pub rejection: Rejection,
}

fn refused(header: Option<Header>, rejection: Rejection) -> Box<Refused> {
    Box::new(Refused { header, rejection })
}

/// Read a whole message. `Err` carries the header when it could be read (so the ACK can be addressed) and why the
/// message is refused.
pub fn parse_inbound(text: &str) -> Result<Inbound, Box<Refused>> {
    let m = Message::parse(text).map_err(|e| {
        let code = match e {
            Hl7Error::Empty | Hl7Error::NoMsh | Hl7Error::SegmentName { .. } => {
                ErrorCode::SEGMENT_SEQUENCE
            }
            _ => ErrorCode::DATA_TYPE,
        };
        refused(None, Rejection::new(AckCode::AR, code, e.to_string()))
    })?;
    let header = parse_header(&m).map_err(|r| refused(None, r))?;
    let sent_at = check_header(&m, &header).map_err(|r| refused(Some(header.clone()), r))?;
    let patient = read_patient(&m);
    let result = if header.trigger == "R01" {
        read_observation(&m, &header, sent_at, patient).map(Inbound::Observation)
    } else {
        read_alarm(&m, &header, sent_at, patient).map(Inbound::Alarm)
    };
    result.map_err(|r| refused(Some(header), r))
}

fn read_patient(m: &Message) -> Option<(String, String)> {
    let pid = m.first("PID")?;
    let id = pid.component(3, 1).ok()?;
    let name = pid.component(5, 1).ok()?;
    (!id.is_empty() && id != "UNKNOWN").then_some((id, name))
}

/// One OBX row read: where it is and its observation identifier (OBX-3: code, name, coding system).
struct Row<'a> {
    occurrence: usize,
    seg: &'a Segment,
    code: (String, String, String),
}

impl Row<'_> {
    fn is(&self, m: Mdc) -> bool {
        (self.code.0 == m.code || self.code.1 == m.name)
            && (self.code.2 == MDC || self.code.2.is_empty())
    }

    fn is_local(&self, code: &str) -> bool {
        self.code.2 == LOCAL && self.code.0 == code
    }

    fn rejection(&self, code: ErrorCode, field: usize, text: String) -> Rejection {
        Rejection::new(AckCode::AE, code, text).at("OBX", self.occurrence, field, 1)
    }

    fn text(&self) -> Result<String, Rejection> {
        self.seg
            .value(5)
            .map_err(|e| self.rejection(ErrorCode::DATA_TYPE, 5, e.to_string()))
    }

    /// OBX-5 as a number in one of the `units` (MDC code or UCUM text in OBX-6), converted by the factor given.
    fn number(&self, what: &str, units: &[(&str, f64)]) -> Result<f64, Rejection> {
        let text = self.text()?;
        let value: f64 = text
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                self.rejection(
                    ErrorCode::DATA_TYPE,
                    5,
                    format!("{what}: {text:?} is not a number"),
                )
            })?;
        let unit_code = self.seg.component(6, 1).unwrap_or_default();
        let unit_ucum = self.seg.component(6, 4).unwrap_or_default();
        let factor = units
            .iter()
            .find(|(u, _)| *u == unit_code || (!unit_ucum.is_empty() && *u == unit_ucum))
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let known: Vec<&str> = units.iter().map(|u| u.0).collect();
                self.rejection(
                    ErrorCode::TABLE_VALUE_NOT_FOUND,
                    6,
                    format!(
                        "{what}: unit {unit_code:?} is not one of {}",
                        known.join(", ")
                    ),
                )
            })?;
        Ok(value * factor)
    }
}

fn rows(m: &Message) -> Result<Vec<Row<'_>>, Rejection> {
    let mut out = Vec::new();
    for (occurrence, (_, seg)) in m.all("OBX").enumerate() {
        let occurrence = occurrence + 1;
        let c = |i| {
            seg.component(3, i).map_err(|e| {
                Rejection::new(AckCode::AE, ErrorCode::DATA_TYPE, e.to_string())
                    .at("OBX", occurrence, 3, i)
            })
        };
        out.push(Row {
            occurrence,
            seg,
            code: (c(1)?, c(2)?, c(3)?),
        });
    }
    Ok(out)
}

fn missing(what: &str, code: &str) -> Rejection {
    Rejection::new(
        AckCode::AE,
        ErrorCode::REQUIRED_FIELD_MISSING,
        format!("no OBX row with {what} ({code})"),
    )
}

fn read_observation(
    m: &Message,
    h: &Header,
    sent_at: Timestamp,
    patient: Option<(String, String)>,
) -> Result<Observation, Rejection> {
    let ml = [(codes::DIM_ML.0, 1.0), (codes::DIM_ML.2, 1.0)];
    let minutes = [
        (codes::DIM_MIN.0, 1.0),
        (codes::DIM_MIN.2, 1.0),
        (codes::DIM_SEC.0, 1.0 / 60.0),
        (codes::DIM_SEC.2, 1.0 / 60.0),
    ];
    let percent = [(codes::DIM_PERCENT.0, 1.0), (codes::DIM_PERCENT.2, 1.0)];
    let mut state = None;
    let mut infusing = None;
    let (mut rate, mut vtbi, mut remaining, mut delivered, mut minutes_left) =
        (None, None, None, None, None);
    let (mut battery, mut battery_min, mut pressure, mut mains) = (None, None, None, None);
    // Rows Infusafe does not use (drug library, channel labels, …) are ignored: a PCD-01 report carries many.
    for row in rows(m)? {
        if row.is_local(codes::LOCAL_PUMP_STATE) {
            let s = row.text()?;
            if pump::State::from_name(&s).is_none() {
                let names: Vec<_> = pump::State::ALL.iter().map(|s| s.name()).collect();
                return Err(row.rejection(
                    ErrorCode::TABLE_VALUE_NOT_FOUND,
                    5,
                    format!("{s:?} is not a pump state; use one of {}", names.join(", ")),
                ));
            }
            state = Some(s);
        } else if row.is_local(codes::LOCAL_DOWNSTREAM_PRESSURE) {
            pressure = Some(row.number("downstream pressure", &[(codes::UCUM_MMHG, 1.0)])?);
        } else if row.is(codes::PUMP_INFUSING_STATUS) {
            let v = row.seg.component(5, 2).unwrap_or_default();
            let v = if v.is_empty() { row.text()? } else { v };
            infusing = Some(match v.as_str() {
                "pump-status-infusing" => true,
                "pump-status-not-infusing" => false,
                other => {
                    return Err(row.rejection(
                        ErrorCode::TABLE_VALUE_NOT_FOUND,
                        5,
                        format!("infusing status {other:?}: use pump-status-infusing or pump-status-not-infusing"),
                    ));
                }
            });
        } else if row.is(codes::FLOW_FLUID_PUMP_CURRENT) {
            rate = Some(row.number(
                "rate",
                &[(codes::DIM_ML_PER_H.0, 1.0), (codes::DIM_ML_PER_H.2, 1.0)],
            )?);
        } else if row.is(codes::VOL_FLUID_TBI) {
            vtbi = Some(row.number("VTBI", &ml)?);
        } else if row.is(codes::VOL_FLUID_TBI_REMAIN) {
            remaining = Some(row.number("volume remaining", &ml)?);
        } else if row.is(codes::VOL_FLUID_DELIV_TOTAL) {
            delivered = Some(row.number("volume infused", &ml)?);
        } else if row.is(codes::TIME_PD_REMAIN) {
            minutes_left = Some(row.number("time remaining", &minutes)?);
        } else if row.is(codes::ATTR_VAL_BATT_CHARGE) {
            battery = Some(row.number("battery charge", &percent)?);
        } else if row.is(codes::ATTR_TIME_BATT_REMAIN) {
            battery_min = Some(row.number("battery time remaining", &minutes)?);
        } else if row.is(codes::ATTR_POWER_STAT) {
            let v = row.text()?;
            mains = Some(match v.as_str() {
                "onMains(0)" | "onMains" => true,
                "onBattery(1)" | "onBattery" => false,
                other => {
                    return Err(row.rejection(
                        ErrorCode::TABLE_VALUE_NOT_FOUND,
                        5,
                        format!("power status {other:?}: use onMains(0) or onBattery(1)"),
                    ));
                }
            });
        }
    }
    // A gateway that does not send Infusafe's own pump state is read from the infusing status.
    let state = match (state, infusing) {
        (Some(s), _) => s,
        (None, Some(true)) => "infusing".to_string(),
        (None, Some(false)) => "stopped".to_string(),
        (None, None) => {
            return Err(missing(
                "the infusing status",
                "184519^MDC_PUMP_INFUSING_STATUS^MDC or pump_state^^99INFUSAFE",
            ));
        }
    };
    let need = |v: Option<f64>, what: &str, m: Mdc| {
        v.ok_or_else(|| missing(what, &format!("{}^{}^MDC", m.code, m.name)))
    };
    Ok(Observation {
        sender: h.sender.clone(),
        control_id: h.control_id.clone(),
        sent_at,
        patient,
        state,
        rate_ml_per_h: need(rate, "the current rate", codes::FLOW_FLUID_PUMP_CURRENT)?,
        vtbi_ml: vtbi,
        remaining_ml: need(
            remaining,
            "the volume remaining",
            codes::VOL_FLUID_TBI_REMAIN,
        )?,
        delivered_ml: need(
            delivered,
            "the volume infused",
            codes::VOL_FLUID_DELIV_TOTAL,
        )?,
        minutes_left,
        battery_percent: need(battery, "the battery charge", codes::ATTR_VAL_BATT_CHARGE)?,
        battery_minutes_left: battery_min,
        downstream_pressure_mmhg: pressure,
        mains_present: mains,
    })
}

fn read_alarm(
    m: &Message,
    h: &Header,
    sent_at: Timestamp,
    patient: Option<(String, String)>,
) -> Result<AlarmReport, Rejection> {
    let obr = m.first("OBR").ok_or_else(|| {
        Rejection::new(
            AckCode::AR,
            ErrorCode::SEGMENT_SEQUENCE,
            "ORU^R40 needs an OBR segment (the alarm event)",
        )
    })?;
    let alarm_id = obr.component(3, 1).map_err(|e| {
        Rejection::new(AckCode::AE, ErrorCode::DATA_TYPE, e.to_string()).at("OBR", 1, 3, 1)
    })?;
    if alarm_id.is_empty() || alarm_id.len() > CONTROL_ID_MAX {
        return Err(Rejection::new(
            AckCode::AE,
            ErrorCode::REQUIRED_FIELD_MISSING,
            "OBR-3 must name this alarm occurrence (the same filler id in its start, continue and end)",
        )
        .at("OBR", 1, 3, 1));
    }
    let rows = rows(m)?;
    let find = |code: Mdc| rows.iter().find(|r| r.is(code));
    let condition = find(codes::EVT_ALARM)
        .ok_or_else(|| missing("the alarm condition in OBX-5", "196616^MDC_EVT_ALARM^MDC"))?;
    let c = |i| condition.seg.component(5, i).unwrap_or_default();
    let triplets = [(c(1), c(2), c(3)), (c(4), c(5), c(6))];
    let alarm = codes::alarm_for(&triplets).ok_or_else(|| {
        condition.rejection(
            ErrorCode::TABLE_VALUE_NOT_FOUND,
            5,
            format!(
                "alarm condition {}^{}^{} is not one Infusafe knows (see the MDC table in docs/api.md)",
                triplets[0].0, triplets[0].1, triplets[0].2
            ),
        )
    })?;
    if alarm == codes::PUMP_SILENT {
        return Err(condition.rejection(
            ErrorCode::TABLE_VALUE_NOT_FOUND,
            5,
            "pump_silent is raised by the server only, never by a device".into(),
        ));
    }
    let phase_row = find(codes::ATTR_EVENT_PHASE)
        .ok_or_else(|| missing("the event phase", "68481^MDC_ATTR_EVENT_PHASE^MDC"))?;
    let phase_text = phase_row.text()?;
    let phase = Phase::from_name(&phase_text).ok_or_else(|| {
        let names: Vec<_> = Phase::ALL.iter().map(|p| p.name()).collect();
        phase_row.rejection(
            ErrorCode::TABLE_VALUE_NOT_FOUND,
            5,
            format!(
                "event phase {phase_text:?}: use one of {}",
                names.join(", ")
            ),
        )
    })?;
    let state_row = find(codes::ATTR_ALARM_STATE)
        .ok_or_else(|| missing("the alarm state", "68482^MDC_ATTR_ALARM_STATE^MDC"))?;
    let state = state_row.text()?;
    if !ALARM_STATES.contains(&state.as_str()) {
        return Err(state_row.rejection(
            ErrorCode::TABLE_VALUE_NOT_FOUND,
            5,
            format!(
                "alarm state {state:?}: use one of {}",
                ALARM_STATES.join(", ")
            ),
        ));
    }
    let inactivation = match find(codes::ATTR_ALARM_INACTIVATION_STATE) {
        None => Inactivation::Enabled,
        Some(row) => {
            let text = row.text()?;
            Inactivation::from_name(&text).ok_or_else(|| {
                let names: Vec<_> = Inactivation::ALL.iter().map(|p| p.name()).collect();
                row.rejection(
                    ErrorCode::TABLE_VALUE_NOT_FOUND,
                    5,
                    format!(
                        "inactivation state {text:?}: use one of {}",
                        names.join(", ")
                    ),
                )
            })?
        }
    };
    let priority = match find(codes::ATTR_ALARM_PRIORITY) {
        None => None,
        Some(row) => {
            let text = row.text()?;
            Some(priority_of(&text).ok_or_else(|| {
                row.rejection(
                    ErrorCode::TABLE_VALUE_NOT_FOUND,
                    5,
                    format!("alarm priority {text:?}: Infusafe records PH, PM or PL"),
                )
            })?)
        }
    };
    if matches!(phase, Phase::Start | Phase::StartOnly | Phase::Present) && priority.is_none() {
        return Err(missing(
            "the alarm priority (a starting alarm needs one)",
            "68484^MDC_ATTR_ALARM_PRIORITY^MDC",
        ));
    }
    let text = match find(codes::ATTR_ALERT_TEXT) {
        Some(row) => Some(row.text()?.chars().take(ALERT_TEXT_MAX).collect()),
        None => None,
    };
    Ok(AlarmReport {
        sender: h.sender.clone(),
        control_id: h.control_id.clone(),
        sent_at,
        patient,
        alarm_id,
        alarm: alarm.to_string(),
        phase,
        state,
        inactivation,
        priority,
        text,
    })
}
