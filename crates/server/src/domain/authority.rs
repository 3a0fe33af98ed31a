//! Who may write which event into a patient's record. Every kind has one owner: the pump (what the pump itself
//! saw and did), the patient's side (what a patient or caregiver records), the care team, or the server (who was
//! registered, who read the record, what was escalated and sent). The pump link accepts only pump-owned kinds;
//! a pump's correction may only supersede that same pump's own events. The table is total over the record's
//! kinds and the server's own (`tests` walks every kind × every source).

use record::Kind;

use super::event::ServerKind;

/// The owner of an event kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Written by a pump about itself, through the pump link.
    Pump,
    /// Written by the server for a patient or caregiver's own entries (checks, feelings, notes).
    PatientSide,
    /// Written by the server for the care team (plans, answers to escalations).
    CareTeam,
    /// Written by the server itself (registration, audit, escalation, the server's own alarms).
    Server,
}

/// The owner of each record kind.
pub fn owner(kind: Kind) -> Owner {
    match kind {
        Kind::ProgramAccepted
        | Kind::LimitOverrideConfirmed
        | Kind::InfusionStarted
        | Kind::InfusionPaused
        | Kind::InfusionResumed
        | Kind::InfusionStopped
        | Kind::InfusionCompleted
        | Kind::AlarmRaised
        | Kind::AlarmAcknowledged
        | Kind::AlarmSilenced
        | Kind::AlarmCleared
        | Kind::AlarmEscalated
        | Kind::BolusGiven
        | Kind::BolusDenied
        | Kind::Telemetry
        | Kind::Correction => Owner::Pump,
        Kind::ChecklistCompleted
        | Kind::SiteCheck
        | Kind::SymptomCheck
        | Kind::Feeling
        | Kind::Note
        | Kind::ReminderDone
        | Kind::HowIFelt
        | Kind::SiteSeen
        | Kind::QuestionAsked => Owner::PatientSide,
        Kind::PlanChanged | Kind::EscalationAnswered | Kind::QuestionAnswered => Owner::CareTeam,
        Kind::PatientRegistered
        | Kind::DeviceAssigned
        | Kind::EscalationSent
        | Kind::RecordRead
        | Kind::Login => Owner::Server,
    }
}

/// The owner of each kind only the server writes.
pub fn server_kind_owner(kind: ServerKind) -> Owner {
    match kind {
        ServerKind::AlarmStepDone | ServerKind::ChecklistAnswered => Owner::PatientSide,
        ServerKind::PracticeStarted
        | ServerKind::PracticeStopped
        | ServerKind::PracticeFault
        | ServerKind::PracticeAction
        | ServerKind::WebhookChanged
        | ServerKind::PumpClockSkew
        | ServerKind::PasswordChanged
        | ServerKind::DeviceRevoked
        | ServerKind::DevicePcdIdSet
        | ServerKind::PcdReportSent
        | ServerKind::CalendarLinkCreated
        | ServerKind::CalendarLinkRevoked => Owner::Server,
    }
}

use super::board::SERVER_ALARMS;

/// Why the pump link refused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The kind belongs to someone else.
    NotPumpKind { kind: String, owner: Owner },
    /// A pump named an alarm only the server raises.
    ServerAlarm { alarm: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotPumpKind { kind, owner } => write!(
                f,
                "a pump may not write `{kind}` events (they are written by {}); send only what the pump itself saw and did",
                match owner {
                    Owner::Pump => "the pump",
                    Owner::PatientSide => "the patient's screens",
                    Owner::CareTeam => "the care team",
                    Owner::Server => "the server",
                }
            ),
            Refusal::ServerAlarm { alarm } => write!(
                f,
                "`{alarm}` is raised and cleared by the server, never by a pump"
            ),
        }
    }
}

/// Whether a pump may send an event of this kind (named as on the wire) about this alarm (if any). Kinds neither
/// the record nor the server knows are a pump's own vocabulary (`state_changed`, `kvo_started`, …) and are kept
/// verbatim; names the server writes are refused.
pub fn pump_may_send(kind: &str, alarm: Option<&str>) -> Result<(), Refusal> {
    let owner = match Kind::from_name(kind) {
        Some(k) => owner(k),
        None => match ServerKind::ALL.into_iter().find(|s| s.name() == kind) {
            Some(s) => server_kind_owner(s),
            None => Owner::Pump,
        },
    };
    if owner != Owner::Pump {
        return Err(Refusal::NotPumpKind {
            kind: kind.to_string(),
            owner,
        });
    }
    if let Some(alarm) = alarm.filter(|a| SERVER_ALARMS.contains(a)) {
        return Err(Refusal::ServerAlarm {
            alarm: alarm.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind × every source: only the pump's own kinds pass the pump link; everything the patient side, the
    /// care team or the server writes is refused with the owner named.
    #[test]
    fn every_kind_has_one_owner_and_the_link_takes_only_the_pump_kinds() {
        let pump_kinds = [
            "program_accepted",
            "limit_override_confirmed",
            "infusion_started",
            "infusion_paused",
            "infusion_resumed",
            "infusion_stopped",
            "infusion_completed",
            "alarm_raised",
            "alarm_acknowledged",
            "alarm_silenced",
            "alarm_cleared",
            "alarm_escalated",
            "bolus_given",
            "bolus_denied",
            "telemetry",
            "correction",
        ];
        for kind in Kind::ALL {
            let expected_pump = pump_kinds.contains(&kind.name());
            assert_eq!(
                pump_may_send(kind.name(), None).is_ok(),
                expected_pump,
                "{kind:?}"
            );
            assert_eq!(owner(kind) == Owner::Pump, expected_pump, "{kind:?}");
        }
        for kind in ServerKind::ALL {
            assert!(pump_may_send(kind.name(), None).is_err(), "{kind:?}");
        }
        let refusal = pump_may_send("patient_registered", None).unwrap_err();
        assert!(refusal.to_string().contains("the server"), "{refusal}");
        let refusal = pump_may_send("symptom_check", None).unwrap_err();
        assert!(refusal.to_string().contains("patient"), "{refusal}");
        // The pump's own vocabulary beyond the record's kinds.
        assert!(pump_may_send("state_changed", None).is_ok());
        assert!(pump_may_send("kvo_started", None).is_ok());
    }

    #[test]
    fn a_pump_never_raises_or_clears_the_server_alarms() {
        for kind in ["alarm_raised", "alarm_cleared", "alarm_acknowledged"] {
            assert!(pump_may_send(kind, Some("pump_silent")).is_err());
            assert!(pump_may_send(kind, Some("air_in_line")).is_ok());
        }
    }
}
