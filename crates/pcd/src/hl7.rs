//! HL7 v2 messages in the standard ("ER7") encoding: segments separated by CR, fields by `|`, repetitions by
//! `~`, components by `^`, subcomponents by `&`, and the escape sequences `\F\ \S\ \T\ \R\ \E\ \Xhh…\ \.br\`.
//! Parsing keeps each field as sent (escaped) and unescapes on access, so a component that contains a delimiter
//! is read back exactly; building escapes every value it is given.

/// Segments a message may have.
pub const SEGMENTS_MAX: usize = 2_000;
/// Fields a segment may have.
pub const FIELDS_MAX: usize = 256;

/// The only encoding characters Infusafe accepts (MSH-2), the HL7 defaults.
pub const ENCODING_CHARACTERS: &str = "^~\\&";

/// Why a text is not an HL7 v2 message we can read. `segment` is the 1-based segment number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Hl7Error {
    #[error("the message is empty")]
    Empty,
    #[error("the message does not start with an MSH segment")]
    NoMsh,
    #[error("MSH-1/MSH-2 must be the standard encoding characters |^~\\&")]
    Encoding,
    #[error("segment {segment}: {name:?} is not a segment name (three letters or digits)")]
    SegmentName { segment: usize, name: String },
    #[error("more than {SEGMENTS_MAX} segments")]
    TooManySegments,
    #[error("segment {segment}: more than {FIELDS_MAX} fields")]
    TooManyFields { segment: usize },
    #[error("segment {segment}: a control character (0x{byte:02X}) in a field")]
    Control { segment: usize, byte: u8 },
    #[error(
        "{0:?} is not an escape sequence Infusafe reads (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\ \\.br\\)"
    )]
    Escape(String),
    #[error("the message is not UTF-8")]
    Utf8,
}

/// One segment: its name and its fields as sent (escaped). `field(1)` is the first field after the name; for
/// MSH, `field(1)` is the field separator and `field(2)` the encoding characters, as the standard numbers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    fields: Vec<String>,
}

impl Segment {
    /// The raw (escaped) text of field `n` (1-based); empty when absent.
    pub fn raw(&self, n: usize) -> &str {
        n.checked_sub(1)
            .and_then(|i| self.fields.get(i))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Component `c` (1-based) of the first repetition of field `n`, unescaped (its first subcomponent is kept
    /// whole with `&` when it has several). Empty when absent.
    pub fn component(&self, n: usize, c: usize) -> Result<String, Hl7Error> {
        let first = self.raw(n).split('~').next().unwrap_or("");
        let comp = c
            .checked_sub(1)
            .and_then(|i| first.split('^').nth(i))
            .unwrap_or("");
        unescape(comp)
    }

    /// Field `n`'s first component, unescaped.
    pub fn value(&self, n: usize) -> Result<String, Hl7Error> {
        self.component(n, 1)
    }

    pub fn field_count(&self) -> usize {
        self.fields.len()
    }
}

/// A parsed message: its segments in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub segments: Vec<Segment>,
}

impl Message {
    /// Parse a message. Segments may be separated by CR, LF or CRLF; empty lines are skipped.
    pub fn parse(text: &str) -> Result<Message, Hl7Error> {
        let mut segments = Vec::new();
        for line in text.split(['\r', '\n']).filter(|l| !l.is_empty()) {
            if segments.len() >= SEGMENTS_MAX {
                return Err(Hl7Error::TooManySegments);
            }
            let number = segments.len() + 1;
            segments.push(parse_segment(line, number)?);
        }
        match segments.first() {
            None => Err(Hl7Error::Empty),
            Some(s) if s.name != "MSH" => Err(Hl7Error::NoMsh),
            Some(_) => Ok(Message { segments }),
        }
    }

    /// Parse bytes (a frame's payload).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Message, Hl7Error> {
        Message::parse(std::str::from_utf8(bytes).map_err(|_| Hl7Error::Utf8)?)
    }

    pub fn msh(&self) -> &Segment {
        &self.segments[0]
    }

    /// Segments with this name, with their 1-based position in the message.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (usize, &'a Segment)> + 'a {
        self.segments
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.name == name)
            .map(|(i, s)| (i + 1, s))
    }

    pub fn first(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }
}

fn parse_segment(line: &str, number: usize) -> Result<Segment, Hl7Error> {
    if let Some(byte) = line.bytes().find(|b| *b < 0x20 && *b != b'\t') {
        return Err(Hl7Error::Control {
            segment: number,
            byte,
        });
    }
    let name: String = line.chars().take_while(|c| *c != '|').collect();
    let valid_name = name.len() == 3
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !valid_name {
        return Err(Hl7Error::SegmentName {
            segment: number,
            name: name.chars().take(20).collect(),
        });
    }
    let rest = &line[name.len()..];
    let fields: Vec<String> = if name == "MSH" {
        // MSH-1 is the field separator itself; MSH-2 the encoding characters.
        let Some(after) = rest.strip_prefix('|') else {
            return Err(Hl7Error::Encoding);
        };
        let mut f = vec!["|".to_string()];
        f.extend(after.split('|').map(str::to_string));
        if f.get(1).map(String::as_str) != Some(ENCODING_CHARACTERS) {
            return Err(Hl7Error::Encoding);
        }
        f
    } else if rest.is_empty() {
        vec![]
    } else {
        rest[1..].split('|').map(str::to_string).collect()
    };
    if fields.len() > FIELDS_MAX {
        return Err(Hl7Error::TooManyFields { segment: number });
    }
    Ok(Segment { name, fields })
}

/// Undo HL7 escape sequences.
pub fn unescape(text: &str) -> Result<String, Hl7Error> {
    if !text.contains('\\') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('\\') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('\\') else {
            return Err(Hl7Error::Escape(rest[start..].chars().take(12).collect()));
        };
        let seq = &after[..end];
        match seq {
            "F" => out.push('|'),
            "S" => out.push('^'),
            "T" => out.push('&'),
            "R" => out.push('~'),
            "E" => out.push('\\'),
            ".br" => out.push('\n'),
            _ if seq.len() > 1 && seq.starts_with('X') => {
                let hex = &seq[1..];
                if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Hl7Error::Escape(format!("\\{seq}\\")));
                }
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
                    .collect();
                out.push_str(
                    std::str::from_utf8(&bytes)
                        .map_err(|_| Hl7Error::Escape(format!("\\{seq}\\")))?,
                );
            }
            _ => return Err(Hl7Error::Escape(format!("\\{seq}\\"))),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Escape a value for use as one component.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '&' => out.push_str("\\T\\"),
            '~' => out.push_str("\\R\\"),
            '\\' => out.push_str("\\E\\"),
            '\n' => out.push_str("\\.br\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                out.push_str(&format!("\\X{:02X}\\", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// A segment being built: fields are set by number, each from components that are escaped here.
#[derive(Debug, Clone)]
pub struct SegmentBuilder {
    name: &'static str,
    fields: Vec<String>,
}

impl SegmentBuilder {
    pub fn new(name: &'static str) -> SegmentBuilder {
        SegmentBuilder {
            name,
            fields: vec![],
        }
    }

    /// Set field `n` (1-based) to one value.
    pub fn f(self, n: usize, value: &str) -> SegmentBuilder {
        self.c(n, &[value])
    }

    /// Set field `n` (1-based) to components (trailing empty ones dropped).
    pub fn c(mut self, n: usize, components: &[&str]) -> SegmentBuilder {
        let mut parts: Vec<String> = components.iter().map(|c| escape(c)).collect();
        while parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
        if self.fields.len() < n {
            self.fields.resize(n, String::new());
        }
        self.fields[n - 1] = parts.join("^");
        self
    }

    /// Set field `n` to text already in HL7 form (delimiters meant as delimiters).
    pub fn raw(mut self, n: usize, text: &str) -> SegmentBuilder {
        if self.fields.len() < n {
            self.fields.resize(n, String::new());
        }
        self.fields[n - 1] = text.to_string();
        self
    }

    pub fn build(&self) -> String {
        let mut fields = self.fields.clone();
        while fields.last().is_some_and(String::is_empty) {
            fields.pop();
        }
        if self.name == "MSH" {
            // MSH-1 is the separator itself: `MSH|^~\&|…`.
            let rest: Vec<String> = fields.into_iter().skip(1).collect();
            format!("MSH|{}", rest.join("|"))
        } else if fields.is_empty() {
            self.name.to_string()
        } else {
            format!("{}|{}", self.name, fields.join("|"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_and_delimiters_stay_inside_a_component() {
        let tricky = "a|b^c&d~e\\f\nline";
        assert_eq!(unescape(&escape(tricky)).unwrap(), tricky);
        let seg = SegmentBuilder::new("OBX").c(5, &[tricky, "x"]).build();
        let m = Message::parse(&format!("MSH|^~\\&|A\r{seg}\r")).unwrap();
        let obx = m.first("OBX").unwrap();
        assert_eq!(obx.component(5, 1).unwrap(), tricky);
        assert_eq!(obx.component(5, 2).unwrap(), "x");
        assert_eq!(unescape("\\X41\\b").unwrap(), "Ab");
    }

    #[test]
    fn bad_messages_say_why() {
        assert_eq!(Message::parse(""), Err(Hl7Error::Empty));
        assert_eq!(Message::parse("PID|1"), Err(Hl7Error::NoMsh));
        assert_eq!(Message::parse("MSH|*~\\&|A"), Err(Hl7Error::Encoding));
        assert!(matches!(
            Message::parse("MSH|^~\\&|A\robx|1"),
            Err(Hl7Error::SegmentName { segment: 2, .. })
        ));
        assert!(matches!(unescape("\\Q\\"), Err(Hl7Error::Escape(_))));
        assert!(matches!(unescape("abc\\F"), Err(Hl7Error::Escape(_))));
        assert!(matches!(
            Message::parse("MSH|^~\\&|A\u{0}B"),
            Err(Hl7Error::Control { segment: 1, .. })
        ));
    }

    #[test]
    fn msh_fields_are_numbered_as_the_standard_does() {
        let m = Message::parse("MSH|^~\\&|APP^EUI^EUI-64|FAC\rPID").unwrap();
        assert_eq!(m.msh().raw(1), "|");
        assert_eq!(m.msh().raw(2), "^~\\&");
        assert_eq!(m.msh().component(3, 2).unwrap(), "EUI");
        assert_eq!(m.msh().value(4).unwrap(), "FAC");
        let built = SegmentBuilder::new("MSH")
            .raw(2, ENCODING_CHARACTERS)
            .c(3, &["APP", "EUI", "EUI-64"])
            .build();
        assert_eq!(built, "MSH|^~\\&|APP^EUI^EUI-64");
    }
}
