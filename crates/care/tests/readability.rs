//! Patient-facing text stays at or below a grade-8 reading level, measured with SMOG over each `content/*.toml`.
//!
//! SMOG (McLaughlin 1969): grade = 1.0430 × √(polysyllables × 30 / sentences) + 3.1291, where polysyllables are
//! words of three or more syllables. Implemented here, without a library:
//! - the text is every string a patient reads: every string value of the file except the keys that hold ids,
//!   vocabulary words or words for the care team and docs (`SKIPPED_KEYS`);
//! - a sentence ends at `.`, `!` or `?`; a string (a list item, a label) is at least one sentence;
//! - syllables are groups of vowels (a, e, i, o, u, y) in a word, less a silent final "e" (not "-le") and a silent
//!   "-es"/"-ed" (not "-ted"/"-ded"), at least one per word.
//!
//! The threshold is 8.0 per file (US school grade 8: the usual ceiling for patient information).

use care::SOURCES;

/// Keys whose strings are not read by patients. `observations` is skipped only where it lists vocabulary words (a
/// check group); the `[observations]` table of triage.toml holds the patient's labels and is read.
const SKIPPED_KEYS: [&str; 15] = [
    "id",
    "condition",
    "level",
    "call",
    "alarm",
    "line",
    "observation",
    "sign",
    "phase",
    "checklist",
    "field",
    "kind",
    "departure",
    "keep_steps",
    "about_line",
];
const MAX_GRADE: f64 = 8.0;

fn syllables(word: &str) -> usize {
    let w: Vec<char> = word
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if w.is_empty() {
        return 0;
    }
    let vowel = |c: char| "aeiouy".contains(c);
    let mut groups = 0;
    let mut previous = false;
    for &c in &w {
        let v = vowel(c);
        if v && !previous {
            groups += 1;
        }
        previous = v;
    }
    let n = w.len();
    let ends = |s: &str| w.iter().rev().take(s.len()).rev().copied().eq(s.chars());
    let silent_e = w[n - 1] == 'e' && !ends("le");
    let silent_es_ed =
        n > 3 && (ends("es") || ends("ed")) && !vowel(w[n - 3]) && !ends("ted") && !ends("ded");
    if groups > 1 && (silent_e || silent_es_ed) {
        groups -= 1;
    }
    groups.max(1)
}

fn texts<'a>(value: &'a toml::Value, key: Option<&str>, out: &mut Vec<&'a str>) {
    if key.is_some_and(|k| SKIPPED_KEYS.contains(&k))
        || (key == Some("observations") && value.is_array())
    {
        return;
    }
    match value {
        toml::Value::String(s) => out.push(s),
        toml::Value::Array(items) => items.iter().for_each(|v| texts(v, key, out)),
        toml::Value::Table(table) => table.iter().for_each(|(k, v)| texts(v, Some(k), out)),
        _ => {}
    }
}

/// (sentences, polysyllables, grade)
fn smog(texts: &[&str]) -> (usize, usize, f64) {
    let mut sentences = 0;
    let mut poly = 0;
    for text in texts {
        sentences += text
            .split(['.', '!', '?'])
            .filter(|s| s.chars().any(char::is_alphabetic))
            .count()
            .max(1);
        poly += text
            .split(|c: char| !c.is_ascii_alphabetic() && c != '\'')
            .filter(|w| syllables(w) >= 3)
            .count();
    }
    let grade = 1.0430 * ((poly * 30) as f64 / sentences as f64).sqrt() + 3.1291;
    (sentences, poly, grade)
}

#[test]
fn syllable_counts_of_known_words() {
    for (word, n) in [
        ("pump", 1),
        ("line", 1),
        ("used", 1),
        ("table", 2),
        ("tubing", 2),
        ("medicine", 3),
        ("infusion", 3),
        ("emergency", 4),
        ("catheter", 3),
        ("disconnected", 4),
    ] {
        assert_eq!(syllables(word), n, "{word}");
    }
}

#[test]
fn smog_tells_hard_text_from_plain_text() {
    let hard = [
        "Intravenous administration of antimicrobial medication necessitates meticulous aseptic technique.",
        "Immediately discontinue the infusion if anaphylactic manifestations materialize.",
    ];
    let plain = [
        "Wash your hands.",
        "Close the clamp.",
        "Call your nurse now.",
    ];
    assert!(smog(&hard).2 > 12.0, "{:?}", smog(&hard));
    assert!(smog(&plain).2 < 4.0, "{:?}", smog(&plain));
}

#[test]
fn content_is_at_or_below_grade_8() {
    let mut report = Vec::new();
    let mut too_hard = Vec::new();
    for (file, source) in SOURCES {
        let value: toml::Value = toml::from_str(source).unwrap();
        let mut strings = Vec::new();
        texts(&value, None, &mut strings);
        let (sentences, poly, grade) = smog(&strings);
        assert!(sentences >= 30, "{file}: SMOG needs 30 sentences or more");
        report.push(format!(
            "{file}: {sentences} sentences, {poly} polysyllables, grade {grade:.2}"
        ));
        if grade > MAX_GRADE {
            too_hard.push(file);
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        too_hard.is_empty(),
        "above grade {MAX_GRADE}: {too_hard:?}\n{}",
        report.join("\n")
    );
}
