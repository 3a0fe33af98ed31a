//! Programs: what the operator asks for (`ProgramRequest`) and what the core accepted (`Program`).
//! A `Program` exists only after validation against the pump's limits and the drug library.

use alloc::string::String;

use crate::library::LimitZone;

/// What happens when the VTBI has been delivered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EndAction {
    /// Stop the motor and raise `infusion_complete`.
    Stop,
    /// Keep the vein open at this rate, never above the programmed rate.
    Kvo { rate_ml_per_h: f64 },
}

/// Patient-controlled bolus settings (home pain therapy).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BolusProgram {
    pub volume_ml: f64,
    /// Minimum time between two boluses, in minutes.
    pub lockout_min: f64,
    /// Ceiling on everything delivered (basal plus boluses) in any rolling 60 minutes, in mL.
    pub max_ml_per_h: f64,
}

/// A program as entered, before any check.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramRequest {
    /// Drug-library entry id; `None` runs under the pump's general limits only.
    pub drug_id: Option<String>,
    pub rate_ml_per_h: f64,
    /// Volume to be infused.
    pub vtbi_ml: f64,
    pub end_action: EndAction,
    pub bolus: Option<BolusProgram>,
    /// Volume in the container when it was attached, if known; drives `reservoir_empty` and
    /// `infusion_near_end` when it is less than the VTBI.
    pub reservoir_ml: Option<f64>,
}

/// A validated program. Fields are private so it cannot be built without passing the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub(crate) request: ProgramRequest,
    /// Soft-limit breaches the operator confirmed, kept for the record.
    pub(crate) overrides_confirmed: bool,
}

impl Program {
    pub fn drug_id(&self) -> Option<&str> {
        self.request.drug_id.as_deref()
    }
    pub fn rate_ml_per_h(&self) -> f64 {
        self.request.rate_ml_per_h
    }
    pub fn vtbi_ml(&self) -> f64 {
        self.request.vtbi_ml
    }
    pub fn end_action(&self) -> EndAction {
        self.request.end_action
    }
    pub fn bolus(&self) -> Option<BolusProgram> {
        self.request.bolus
    }
    pub fn reservoir_ml(&self) -> Option<f64> {
        self.request.reservoir_ml
    }
    pub fn overrides_confirmed(&self) -> bool {
        self.overrides_confirmed
    }
    pub fn request(&self) -> &ProgramRequest {
        &self.request
    }
}

/// Why a program was refused. `Display` names the value, what was given and the allowed range.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgramError {
    /// A value is not a finite number.
    NotANumber { field: &'static str },
    /// A value is outside what the pump can do at all.
    OutOfRange { field: &'static str, value: f64, min: f64, max: f64 },
    /// A value is outside a drug-library hard limit.
    HardLimit { field: &'static str, value: f64, zone: LimitZone, limit: f64, drug: String },
    /// The KVO rate is above the programmed rate.
    KvoAboveRate { kvo_ml_per_h: f64, rate_ml_per_h: f64 },
    /// The drug id is not in the library.
    UnknownDrug { drug_id: String },
    /// A bolus was programmed for a drug whose library entry has no bolus limits.
    BolusNotAllowed { drug: String },
}
