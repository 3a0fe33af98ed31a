//! The closed vocabularies of the companion (levels, roles, observations, line types, log fields, reminder kinds),
//! each with one serialized name per value, so the record, the server and the app all speak the same words.

use std::fmt;

/// Defines a closed vocabulary: an enum with `ALL`, `name()`, `from_name()`, and serde that reads and writes the
/// names. An unknown name is an error that lists every valid name, so a typo tells the user what to write instead.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// What this vocabulary is called in error messages.
            pub const WHAT: &'static str = $what;

            /// The public, serialized name (a contract: never rename).
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value with this name, if any.
            pub fn from_name(name: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }

            /// Parses a name, or explains which names are valid.
            pub fn parse(name: &str) -> Result<$name, String> {
                Self::from_name(name).ok_or_else(|| unknown_word(name, $what, Self::ALL.iter().map(|v| v.name())))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// The message for a word outside a vocabulary: `"picc2" is not a line type; use one of picc, port, …`.
pub(crate) fn unknown_word<'a>(
    word: &str,
    what: &str,
    valid: impl Iterator<Item = &'a str>,
) -> String {
    let valid: Vec<&str> = valid.collect();
    format!(
        "{word:?} is not {} {what}; use one of {}",
        article(what),
        valid.join(", ")
    )
}

fn article(what: &str) -> &'static str {
    match what.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

vocabulary! {
    /// How urgent a situation is. Ordered: `SelfCare < CallCareTeam < Emergency`.
    pub enum Level ("level") {
        /// Follow the steps, keep watching, log it.
        SelfCare => "self_care",
        /// Time-sensitive: call the nurse, on-call line or pharmacy now.
        CallCareTeam => "call_care_team",
        /// Call emergency services now.
        Emergency => "emergency",
    }
}

vocabulary! {
    /// Whom the patient may be told to call. The plan gives each a name and a number.
    pub enum Role ("contact role") {
        /// The home infusion nurse.
        Nurse => "nurse",
        /// The on-call line (day and night).
        OnCall => "on_call",
        /// The home infusion pharmacy.
        Pharmacy => "pharmacy",
        /// The pump's support line.
        DeviceSupport => "device_support",
        /// The local emergency number.
        Emergency => "emergency",
    }
}

vocabulary! {
    /// The kinds of access line in the guide.
    pub enum LineType ("line type") {
        Picc => "picc",
        CentralLine => "central_line",
        Port => "port",
        PeripheralIv => "peripheral_iv",
        Subcutaneous => "subcutaneous",
        Epidural => "epidural",
        /// A longer peripheral catheter in the upper arm whose tip stays below the armpit: not a central line.
        Midline => "midline",
    }
}

impl LineType {
    /// Central lines end in a large vein near the heart; a central line that comes out is an emergency.
    pub fn is_central(self) -> bool {
        matches!(
            self,
            LineType::Picc | LineType::CentralLine | LineType::Port
        )
    }
}

vocabulary! {
    /// What a patient can report on the symptom-check screen (the triage input vocabulary).
    pub enum Observation ("observation") {
        DifficultyBreathing => "difficulty_breathing",
        ChestPain => "chest_pain",
        SevereShortnessOfBreath => "severe_shortness_of_breath",
        FaceLipTongueThroatSwelling => "face_lip_tongue_throat_swelling",
        FeelingFaint => "feeling_faint",
        Fever => "fever",
        Chills => "chills",
        FeelingVeryUnwell => "feeling_very_unwell",
        RapidlySpreadingRedness => "rapidly_spreading_redness",
        CatheterCameOut => "catheter_came_out",
        CatheterDisplaced => "catheter_displaced",
        NewRednessAtSite => "new_redness_at_site",
        WarmthAtSite => "warmth_at_site",
        SwellingAtSite => "swelling_at_site",
        PainAtSite => "pain_at_site",
        BurningAtSite => "burning_at_site",
        LeakingAtSite => "leaking_at_site",
        DressingWet => "dressing_wet",
        DressingLoose => "dressing_loose",
        DressingSoiled => "dressing_soiled",
        FluidCloudy => "fluid_cloudy",
        FluidParticles => "fluid_particles",
        BagLeaking => "bag_leaking",
        AccidentalDisconnection => "accidental_disconnection",
        BagEmptyingFasterThanUsual => "bag_emptying_faster_than_usual",
        BagEmptyingSlowerThanUsual => "bag_emptying_slower_than_usual",
        UnsureIfDoseGiven => "unsure_if_dose_given",
        PumpStoppedCannotRestart => "pump_stopped_cannot_restart",
        TubingKinked => "tubing_kinked",
        FeelingOverwhelmed => "feeling_overwhelmed",
        ConfusedOrHardToWake => "confused_or_hard_to_wake",
        SlowOrShallowBreathing => "slow_or_shallow_breathing",
        BleedingAtSite => "bleeding_at_site",
        BleedingWillNotStop => "bleeding_will_not_stop",
        RashOrHives => "rash_or_hives",
        LegWeaknessOrNumbness => "leg_weakness_or_numbness",
        SevereHeadache => "severe_headache",
        BladderOrBowelChange => "bladder_or_bowel_change",
        CatheterBrokenOrCracked => "catheter_broken_or_cracked",
        SwollenArmNeckOrShoulder => "swollen_arm_neck_or_shoulder",
        ShakySweatyOrLowBloodSugar => "shaky_sweaty_or_low_blood_sugar",
    }
}

vocabulary! {
    /// What kind of medicine the therapy is, when that changes which triage rules apply. A plan lists none, one
    /// or more (`therapy_kinds`).
    pub enum TherapyKind ("therapy kind") {
        /// An opioid pain medicine (by epidural, PCA or any other line): sedation signs are an emergency.
        Opioid => "opioid",
        /// Parenteral nutrition: stopping it suddenly can drop the blood sugar.
        ParenteralNutrition => "parenteral_nutrition",
        /// Chemotherapy or another hazardous drug: a leak needs gloves and the spill kit.
        Chemotherapy => "chemotherapy",
    }
}

vocabulary! {
    /// The fields of the infusion log from the guide. The record and the server use these names.
    pub enum LogField ("log field") {
        /// Date and time the infusion started.
        InfusionStart => "infusion_start",
        /// Date and time it ended.
        InfusionEnd => "infusion_end",
        /// An alarm that occurred and how it was resolved.
        Alarm => "alarm",
        /// How the patient felt during and after the infusion.
        HowIFelt => "how_i_felt",
        /// Any change at the access site.
        SiteChange => "site_change",
    }
}

vocabulary! {
    /// What a reminder is for.
    pub enum ReminderKind ("reminder kind") {
        InfusionStart => "infusion_start",
        PumpCheck => "pump_check",
        SiteCheck => "site_check",
        Battery => "battery",
        SupplyChange => "supply_change",
        DressingChange => "dressing_change",
    }
}

vocabulary! {
    /// A checklist's phase of the infusion.
    pub enum Phase ("checklist phase") {
        Before => "before",
        During => "during",
        After => "after",
    }
}

vocabulary! {
    /// A sign to look for at the access site.
    pub enum SiteSign ("site sign") {
        Redness => "redness",
        Warmth => "warmth",
        Swelling => "swelling",
        Pain => "pain",
        Burning => "burning",
        Leakage => "leakage",
        DressingWet => "dressing_wet",
        DressingLoose => "dressing_loose",
        DressingSoiled => "dressing_soiled",
        Bleeding => "bleeding",
        ArmSwelling => "arm_swelling",
    }
}

vocabulary! {
    /// Days of the week for weekly reminders, in iCalendar's two-letter spelling order (Monday first).
    pub enum Weekday ("weekday") {
        Monday => "mon",
        Tuesday => "tue",
        Wednesday => "wed",
        Thursday => "thu",
        Friday => "fri",
        Saturday => "sat",
        Sunday => "sun",
    }
}

impl Weekday {
    /// The RFC 5545 `BYDAY` spelling.
    pub fn ical(self) -> &'static str {
        match self {
            Weekday::Monday => "MO",
            Weekday::Tuesday => "TU",
            Weekday::Wednesday => "WE",
            Weekday::Thursday => "TH",
            Weekday::Friday => "FR",
            Weekday::Saturday => "SA",
            Weekday::Sunday => "SU",
        }
    }

    pub(crate) fn to_jiff(self) -> jiff::civil::Weekday {
        match self {
            Weekday::Monday => jiff::civil::Weekday::Monday,
            Weekday::Tuesday => jiff::civil::Weekday::Tuesday,
            Weekday::Wednesday => jiff::civil::Weekday::Wednesday,
            Weekday::Thursday => jiff::civil::Weekday::Thursday,
            Weekday::Friday => jiff::civil::Weekday::Friday,
            Weekday::Saturday => jiff::civil::Weekday::Saturday,
            Weekday::Sunday => jiff::civil::Weekday::Sunday,
        }
    }
}
