//! Programs: what the operator asks for (`ProgramRequest`) and what the core accepted (`Program`).
//! A `Program` exists only after validation against the pump's limits and the drug library.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::config::Config;
use crate::library::{DrugLibrary, LimitZone, Limits};

/// What happens when the VTBI has been delivered.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum EndAction {
    /// Stop the motor and raise `infusion_complete`.
    Stop,
    /// Keep the vein open at this rate, never above the programmed rate.
    Kvo { rate_ml_per_h: f64 },
}

/// Patient-controlled bolus settings (home pain therapy).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BolusProgram {
    pub volume_ml: f64,
    /// Minimum time between the starts of two boluses, in minutes.
    pub lockout_min: f64,
    /// Ceiling on everything delivered (basal plus boluses) in any rolling 60 minutes, in mL.
    pub max_ml_per_h: f64,
}

/// A program as entered, before any check.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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

impl ProgramRequest {
    /// A continuous infusion without drug library entry, bolus or reservoir volume.
    pub fn continuous(rate_ml_per_h: f64, vtbi_ml: f64, end_action: EndAction) -> ProgramRequest {
        ProgramRequest {
            drug_id: None,
            rate_ml_per_h,
            vtbi_ml,
            end_action,
            bolus: None,
            reservoir_ml: None,
        }
    }
}

/// A validated program. Fields are private so it cannot be built without passing the checks.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    /// The KVO rate after the VTBI, if the program ends in KVO.
    pub fn kvo_ml_per_h(&self) -> Option<f64> {
        match self.request.end_action {
            EndAction::Stop => None,
            EndAction::Kvo { rate_ml_per_h } => Some(rate_ml_per_h),
        }
    }
}

/// A value of a program, named as on the keypad and in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Field {
    Rate,
    Vtbi,
    KvoRate,
    BolusVolume,
    BolusLockout,
    BolusMaxPerHour,
    Reservoir,
}

impl Field {
    /// The name used in messages and the record.
    pub fn name(self) -> &'static str {
        match self {
            Field::Rate => "rate_ml_per_h",
            Field::Vtbi => "vtbi_ml",
            Field::KvoRate => "kvo_rate_ml_per_h",
            Field::BolusVolume => "bolus.volume_ml",
            Field::BolusLockout => "bolus.lockout_min",
            Field::BolusMaxPerHour => "bolus.max_ml_per_h",
            Field::Reservoir => "reservoir_ml",
        }
    }

    /// The unit the value is entered in.
    pub fn unit(self) -> &'static str {
        match self {
            Field::Rate | Field::KvoRate => "mL/h",
            Field::Vtbi | Field::BolusVolume | Field::Reservoir => "mL",
            Field::BolusLockout => "min",
            Field::BolusMaxPerHour => "mL per hour",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One drug-library soft limit a program breaches; it needs the operator's explicit confirmation.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LimitBreach {
    pub field: Field,
    pub value: f64,
    pub zone: LimitZone,
    /// The soft limit that was crossed.
    pub limit: f64,
}

/// Why a program was refused. `Display` names the value, what was given and the allowed range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ProgramError {
    /// A value is not a finite number.
    #[error("{field} is not a number: enter a value in {unit}", unit = field.unit())]
    NotANumber { field: Field },
    /// A value is outside what the pump can do at all.
    #[error(
        "{field} = {value} {unit} is outside the allowed range {min}–{max} {unit}: enter a value in that range",
        unit = field.unit()
    )]
    OutOfRange {
        field: Field,
        value: f64,
        min: f64,
        max: f64,
    },
    /// A value is outside a drug-library hard limit.
    #[error(
        "{field} = {value} {unit} is {side} hard limit of {limit} {unit} for {drug}: the pump refuses it, check the prescription",
        unit = field.unit(),
        side = zone.side()
    )]
    HardLimit {
        field: Field,
        value: f64,
        zone: LimitZone,
        limit: f64,
        drug: String,
    },
    /// The KVO rate is above the programmed rate.
    #[error(
        "kvo_rate_ml_per_h = {kvo_ml_per_h} mL/h is above rate_ml_per_h = {rate_ml_per_h} mL/h: the KVO rate must not exceed the programmed rate"
    )]
    KvoAboveRate {
        kvo_ml_per_h: f64,
        rate_ml_per_h: f64,
    },
    /// The drug id is not in the library.
    #[error("drug \"{drug_id}\" is not in the drug library: choose a drug from the library")]
    UnknownDrug { drug_id: String },
    /// A bolus was programmed for a drug whose library entry has no bolus limits.
    #[error("{drug} may not be given as a patient bolus: remove the bolus settings")]
    BolusNotAllowed { drug: String },
}

/// The outcome of checking a request: a program, plus the soft limits it breaches (empty if none).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checked {
    pub program: Program,
    pub breaches: Vec<LimitBreach>,
}

fn finite(field: Field, value: f64) -> Result<f64, ProgramError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ProgramError::NotANumber { field })
    }
}

fn in_range(field: Field, value: f64, min: f64, max: f64) -> Result<(), ProgramError> {
    finite(field, value)?;
    if value < min || value > max {
        return Err(ProgramError::OutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    Ok(())
}

fn against_library(
    field: Field,
    value: f64,
    limits: &Limits,
    drug: &str,
    breaches: &mut Vec<LimitBreach>,
) -> Result<(), ProgramError> {
    let zone = limits.zone(value);
    match zone {
        LimitZone::Within => Ok(()),
        LimitZone::BelowLowerHard | LimitZone::AboveUpperHard => Err(ProgramError::HardLimit {
            field,
            value,
            zone,
            limit: limits.limit_for(zone),
            drug: String::from(drug),
        }),
        LimitZone::BelowLowerSoft | LimitZone::AboveUpperSoft => {
            breaches.push(LimitBreach {
                field,
                value,
                zone,
                limit: limits.limit_for(zone),
            });
            Ok(())
        }
    }
}

/// Checks a request against the pump's own limits, then the drug library. Pump limits come first
/// because they describe what the hardware can do; library limits describe what is sensible.
pub(crate) fn check(
    request: &ProgramRequest,
    config: &Config,
    library: &DrugLibrary,
) -> Result<Checked, ProgramError> {
    let rate = request.rate_ml_per_h;
    in_range(
        Field::Rate,
        rate,
        config.rate_ml_per_h_min,
        config.rate_ml_per_h_max,
    )?;
    in_range(
        Field::Vtbi,
        request.vtbi_ml,
        config.vtbi_ml_min,
        config.vtbi_ml_max,
    )?;
    if let EndAction::Kvo { rate_ml_per_h: kvo } = request.end_action {
        in_range(
            Field::KvoRate,
            kvo,
            config.kvo_ml_per_h_min,
            config.kvo_ml_per_h_max,
        )?;
        if kvo > rate {
            return Err(ProgramError::KvoAboveRate {
                kvo_ml_per_h: kvo,
                rate_ml_per_h: rate,
            });
        }
    }
    if let Some(bolus) = request.bolus {
        in_range(
            Field::BolusVolume,
            bolus.volume_ml,
            config.bolus_ml_min,
            config.bolus_ml_max,
        )?;
        in_range(
            Field::BolusLockout,
            bolus.lockout_min,
            config.lockout_min_min,
            config.lockout_min_max,
        )?;
        // The hourly ceiling must leave room for the basal and at least one bolus, or the first
        // bolus would already be refused and the basal itself held back.
        in_range(
            Field::BolusMaxPerHour,
            bolus.max_ml_per_h,
            rate + bolus.volume_ml,
            config.rate_ml_per_h_max + config.bolus_ml_max,
        )?;
    }
    if let Some(reservoir) = request.reservoir_ml {
        in_range(
            Field::Reservoir,
            reservoir,
            config.reservoir_empty_ml + 0.1,
            config.vtbi_ml_max,
        )?;
    }

    let mut breaches = Vec::new();
    if let Some(drug_id) = &request.drug_id {
        let Some(entry) = library.get(drug_id) else {
            return Err(ProgramError::UnknownDrug {
                drug_id: drug_id.clone(),
            });
        };
        let drug = entry.name.as_str();
        against_library(Field::Rate, rate, &entry.rate_ml_per_h, drug, &mut breaches)?;
        against_library(
            Field::Vtbi,
            request.vtbi_ml,
            &entry.vtbi_ml,
            drug,
            &mut breaches,
        )?;
        if let Some(bolus) = request.bolus {
            let Some(limits) = &entry.bolus_ml else {
                return Err(ProgramError::BolusNotAllowed {
                    drug: entry.name.clone(),
                });
            };
            against_library(
                Field::BolusVolume,
                bolus.volume_ml,
                limits,
                drug,
                &mut breaches,
            )?;
        }
    }
    Ok(Checked {
        program: Program {
            request: request.clone(),
            overrides_confirmed: false,
        },
        breaches,
    })
}
