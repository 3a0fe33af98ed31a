//! The drug library: per drug its concentration and five limits for rate, VTBI and bolus volume.
//! Constructors check the limits, so the engine can trust every `Limits` it sees.

use alloc::string::String;
use alloc::vec::Vec;

/// Where a value falls against the five limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum LimitZone {
    BelowLowerHard,
    BelowLowerSoft,
    Within,
    AboveUpperSoft,
    AboveUpperHard,
}

impl LimitZone {
    pub fn name(self) -> &'static str {
        match self {
            LimitZone::BelowLowerHard => "below_lower_hard",
            LimitZone::BelowLowerSoft => "below_lower_soft",
            LimitZone::Within => "within",
            LimitZone::AboveUpperSoft => "above_upper_soft",
            LimitZone::AboveUpperHard => "above_upper_hard",
        }
    }

    /// "below the lower" / "above the upper", for messages.
    pub fn side(self) -> &'static str {
        match self {
            LimitZone::BelowLowerHard | LimitZone::BelowLowerSoft => "below the lower",
            LimitZone::Within => "within the",
            LimitZone::AboveUpperSoft | LimitZone::AboveUpperHard => "above the upper",
        }
    }
}

impl core::fmt::Display for LimitZone {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Lower hard ≤ lower soft ≤ typical ≤ upper soft ≤ upper hard, checked by `Limits::new`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Limits {
    lower_hard: f64,
    lower_soft: f64,
    typical: f64,
    upper_soft: f64,
    upper_hard: f64,
}

impl Limits {
    /// Checks that all five are finite, not negative and in order.
    pub fn new(
        lower_hard: f64,
        lower_soft: f64,
        typical: f64,
        upper_soft: f64,
        upper_hard: f64,
    ) -> Result<Limits, LibraryError> {
        let all = [lower_hard, lower_soft, typical, upper_soft, upper_hard];
        if all.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(LibraryError::NotANumber);
        }
        if all.windows(2).any(|w| w[0] > w[1]) {
            return Err(LibraryError::LimitsOutOfOrder {
                lower_hard,
                lower_soft,
                typical,
                upper_soft,
                upper_hard,
            });
        }
        Ok(Limits {
            lower_hard,
            lower_soft,
            typical,
            upper_soft,
            upper_hard,
        })
    }

    pub fn lower_hard(&self) -> f64 {
        self.lower_hard
    }
    pub fn lower_soft(&self) -> f64 {
        self.lower_soft
    }
    pub fn typical(&self) -> f64 {
        self.typical
    }
    pub fn upper_soft(&self) -> f64 {
        self.upper_soft
    }
    pub fn upper_hard(&self) -> f64 {
        self.upper_hard
    }

    /// Where `value` falls. A value equal to a limit is inside it (limits are inclusive).
    /// A non-finite value is outside the hard limits.
    pub fn zone(&self, value: f64) -> LimitZone {
        if value.is_nan() || value < self.lower_hard {
            LimitZone::BelowLowerHard
        } else if value > self.upper_hard {
            LimitZone::AboveUpperHard
        } else if value < self.lower_soft {
            LimitZone::BelowLowerSoft
        } else if value > self.upper_soft {
            LimitZone::AboveUpperSoft
        } else {
            LimitZone::Within
        }
    }

    /// The limit that bounds a zone (for `Within`, the typical value).
    pub fn limit_for(&self, zone: LimitZone) -> f64 {
        match zone {
            LimitZone::BelowLowerHard => self.lower_hard,
            LimitZone::BelowLowerSoft => self.lower_soft,
            LimitZone::Within => self.typical,
            LimitZone::AboveUpperSoft => self.upper_soft,
            LimitZone::AboveUpperHard => self.upper_hard,
        }
    }
}

/// Concentration of the drug in the container, e.g. 2 mg per mL.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Concentration {
    pub amount: f64,
    /// Unit of `amount`, e.g. "mg", "units", "mcg".
    pub unit: String,
    /// Always per mL.
    pub per_ml: f64,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DrugLibrary {
    entries: Vec<DrugEntry>,
}

impl DrugLibrary {
    /// Builds a library, refusing duplicate ids, empty ids or names and impossible concentrations.
    /// (`Limits` are already checked by `Limits::new`.)
    pub fn new(entries: Vec<DrugEntry>) -> Result<DrugLibrary, LibraryError> {
        for (index, entry) in entries.iter().enumerate() {
            if entry.id.trim().is_empty() || entry.name.trim().is_empty() {
                return Err(LibraryError::EmptyName { index });
            }
            let c = &entry.concentration;
            if !c.amount.is_finite() || !c.per_ml.is_finite() || c.amount <= 0.0 || c.per_ml <= 0.0
            {
                return Err(LibraryError::BadConcentration {
                    id: entry.id.clone(),
                });
            }
            if entries[..index].iter().any(|e| e.id == entry.id) {
                return Err(LibraryError::DuplicateDrug {
                    id: entry.id.clone(),
                });
            }
        }
        Ok(DrugLibrary { entries })
    }

    pub fn get(&self, id: &str) -> Option<&DrugEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    pub fn entries(&self) -> &[DrugEntry] {
        &self.entries
    }
}

/// Why a library (or one of its limits) is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LibraryError {
    #[error(
        "drug library limits out of order: lower hard {lower_hard} ≤ lower soft {lower_soft} ≤ typical {typical} ≤ upper soft {upper_soft} ≤ upper hard {upper_hard} must hold"
    )]
    LimitsOutOfOrder {
        lower_hard: f64,
        lower_soft: f64,
        typical: f64,
        upper_soft: f64,
        upper_hard: f64,
    },
    #[error("drug library limits must be finite, non-negative numbers")]
    NotANumber,
    #[error("drug \"{id}\" appears twice in the drug library: each id must be unique")]
    DuplicateDrug { id: String },
    #[error("drug library entry {index} has an empty id or name")]
    EmptyName { index: usize },
    #[error(
        "drug \"{id}\" has an impossible concentration: amount and per_ml must be positive numbers"
    )]
    BadConcentration { id: String },
}
