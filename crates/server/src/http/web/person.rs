//! How a page speaks of the patient: "you" and "your" to the patient, the patient's first name to everyone else.

use crate::services::auth::{CurrentUser, Role};

/// How a page speaks of the patient: "you/your/my" to the patient, the patient's first name to a caregiver or a
/// clinician ("Alex's pump", "Alex's nurse").
#[derive(Debug, Clone)]
pub struct PersonWords {
    /// "your" or "Alex's".
    pub whose: String,
    /// "you" or "Alex".
    pub who: String,
    pub is_patient: bool,
}

impl PersonWords {
    pub fn new(user: &CurrentUser, patient_name: &str) -> PersonWords {
        if user.role == Role::Patient {
            return PersonWords {
                whose: "your".into(),
                who: "you".into(),
                is_patient: true,
            };
        }
        let first = patient_name
            .split_whitespace()
            .next()
            .filter(|w| !w.is_empty())
            .unwrap_or("the patient");
        let whose = if first == "the patient" {
            "the patient's".to_string()
        } else if first.ends_with('s') {
            format!("{first}'")
        } else {
            format!("{first}'s")
        };
        PersonWords {
            whose,
            who: first.to_string(),
            is_patient: false,
        }
    }

    /// The navigation label of a patient page: "My pump" for the patient, "Alex's pump" for anyone else.
    pub fn nav_label(&self, suffix: &str, label: &str) -> String {
        match suffix {
            "pump" if !self.is_patient => format!("{} pump", self.whose),
            _ => label.to_string(),
        }
    }

    /// `whose` with a capital first letter, to start a sentence ("Your nurse", "Alex's nurse").
    pub fn whose_capital(&self) -> String {
        let mut chars = self.whose.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
            .unwrap_or_default()
    }
}
