//! Durations as people write them in scenario files and on the command line: "90s", "10m", "1h30m".

use thiserror::Error;

/// Why a duration could not be read. The message shows the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("empty duration; write e.g. \"90s\", \"10m\", \"2h\" or \"1h30m\"")]
    Empty,
    #[error(
        "`{text}` is not a duration: {why}; write e.g. \"90s\", \"10m\", \"2h\", \"1h30m\" or \"500ms\""
    )]
    Invalid { text: String, why: &'static str },
    #[error("`{text}` is too long a duration (more than 10 years)")]
    TooLong { text: String },
}

/// Longest duration we accept: ten years of simulated time is far beyond any scenario.
pub const DURATION_MS_MAX: u64 = 10 * 365 * 24 * 3_600_000;

/// Parses "90s", "10m", "2h", "1h30m", "1d", "500ms" and combinations in decreasing order of unit
/// ("1h30m15s"). Returns milliseconds. Whitespace around the text is ignored; a bare number is
/// refused because "90" could mean seconds or minutes.
pub fn parse_duration_ms(text: &str) -> Result<u64, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    let invalid = |why| DurationError::Invalid {
        text: t.to_string(),
        why,
    };
    let bytes = t.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
    let mut last_unit_rank = usize::MAX;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(invalid("expected a number before each unit"));
        }
        let number: u128 = t[start..i]
            .parse()
            .map_err(|_| invalid("number too large"))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let (rank, unit_ms): (usize, u128) = match &t[unit_start..i] {
            "d" => (0, 86_400_000),
            "h" => (1, 3_600_000),
            "m" | "min" => (2, 60_000),
            "s" => (3, 1_000),
            "ms" => (4, 1),
            "" => return Err(invalid("missing unit (d, h, m, s or ms)")),
            _ => return Err(invalid("unknown unit (use d, h, m, s or ms)")),
        };
        if last_unit_rank != usize::MAX && rank <= last_unit_rank {
            return Err(invalid("units must go from larger to smaller, each once"));
        }
        last_unit_rank = rank;
        total = total.saturating_add(number.saturating_mul(unit_ms));
        if total > DURATION_MS_MAX as u128 {
            return Err(DurationError::TooLong {
                text: t.to_string(),
            });
        }
    }
    Ok(total as u64)
}

/// Formats milliseconds the way they are parsed ("1h30m", "2m5s", "250ms", "0s").
pub fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Result<u64, &str>) {
        match (parse_duration_ms(input), expect) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{input}"),
            (Err(e), Err(want)) => {
                let msg = e.to_string();
                assert!(msg.contains(want), "{input}: error `{msg}` lacks `{want}`");
            }
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn durations() {
        check("90s", Ok(90_000));
        check("10m", Ok(600_000));
        check("2h", Ok(7_200_000));
        check("1h30m", Ok(5_400_000));
        check(" 1d2h ", Ok(93_600_000));
        check("500ms", Ok(500));
        check("1m30s250ms", Ok(90_250));
        check("0s", Ok(0));
        check("", Err("empty duration"));
        check("90", Err("missing unit"));
        check("5x", Err("unknown unit"));
        check("h", Err("expected a number"));
        check("30m1h", Err("larger to smaller"));
        check("1.5h", Err("missing unit"));
        check("-5m", Err("expected a number"));
        check("99999999d", Err("too long"));
        check(
            "99999999999999999999999999999999999999999h",
            Err("number too large"),
        );
    }

    #[test]
    fn format_round_trips() {
        for ms in [0, 1, 999, 1_000, 90_000, 5_400_000, 93_600_250] {
            assert_eq!(parse_duration_ms(&format_duration_ms(ms)), Ok(ms));
        }
    }
}
