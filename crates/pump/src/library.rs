//! The drug library: per drug its concentration and five limits for rate, VTBI and bolus volume.

use alloc::string::String;
use alloc::vec::Vec;

/// Where a value falls against the five limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitZone {
    BelowLowerHard,
    BelowLowerSoft,
    Within,
    AboveUpperSoft,
    AboveUpperHard,
}

/// Lower hard ≤ lower soft ≤ typical ≤ upper soft ≤ upper hard, checked by `Limits::new`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    lower_hard: f64,
    lower_soft: f64,
    typical: f64,
    upper_soft: f64,
    upper_hard: f64,
}

/// Concentration of the drug in the container, e.g. 2 mg per mL.
#[derive(Debug, Clone, PartialEq)]
pub struct Concentration {
    pub amount: f64,
    /// Unit of `amount`, e.g. "mg", "units", "mcg".
    pub unit: String,
    /// Always per mL.
    pub per_ml: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrugEntry {
    pub id: String,
    pub name: String,
    pub concentration: Concentration,
    pub rate_ml_per_h: Limits,
    pub vtbi_ml: Limits,
    /// `None`: this drug may not be given as a patient bolus.
    pub bolus_ml: Option<Limits>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DrugLibrary {
    entries: Vec<DrugEntry>,
}

/// Why a library (or one of its limits) is invalid.
#[derive(Debug, Clone, PartialEq)]
pub enum LibraryError {
    LimitsOutOfOrder { lower_hard: f64, lower_soft: f64, typical: f64, upper_soft: f64, upper_hard: f64 },
    NotANumber,
    DuplicateDrug { id: String },
}
