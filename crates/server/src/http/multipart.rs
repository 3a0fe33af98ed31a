//! `multipart/form-data` (RFC 7578), read from a body already bounded in size: the one form that carries a file
//! (a photo of the access site) sends it, and the CSRF guard must find the token in it as in any other form.
//! Small on purpose: parts with a name, an optional file name and type, and their bytes; nothing streamed.

/// Most parts accepted in one form.
pub const PARTS_MAX: usize = 64;

/// One part of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    /// Set for a file input (empty when the person chose no file).
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl Part {
    /// The part as text (form fields), when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

/// The boundary of a `multipart/form-data` content type, if that is what it is.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    if !pieces
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    pieces
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() || needle.is_empty() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A `key="value"` parameter of a Content-Disposition header.
fn parameter(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Every part of the body, in order; `Err` says what is malformed.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, &'static str> {
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let mut at =
        find(body, delimiter.as_bytes(), 0).ok_or("no boundary in the body")? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err("a boundary is not followed by a line break");
        }
        at += 2;
        let head_end = find(body, b"\r\n\r\n", at).ok_or("a part has no end of headers")?;
        let head = std::str::from_utf8(&body[at..head_end]).map_err(|_| "headers are not text")?;
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                name = parameter(value, "name");
                filename = parameter(value, "filename");
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_string());
            }
        }
        let data_start = head_end + 4;
        let data_end = find(body, next_delimiter.as_bytes(), data_start)
            .ok_or("a part is not closed by the boundary")?;
        parts.push(Part {
            name: name.ok_or("a part has no name")?,
            filename,
            content_type,
            data: body[data_start..data_end].to_vec(),
        });
        if parts.len() > PARTS_MAX {
            return Err("the form has too many parts");
        }
        at = data_end + next_delimiter.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"site.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\r\n--X\r\n--XyZ\r\nContent-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\r\n\r\n--XyZ--\r\n";

    #[test]
    fn reads_fields_and_files() {
        assert_eq!(
            boundary("multipart/form-data; boundary=XyZ").as_deref(),
            Some("XyZ")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        let parts = parse(BODY, "XyZ").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].text()),
            ("csrf_token", Some("abc"))
        );
        assert_eq!(parts[1].filename.as_deref(), Some("site.jpg"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/jpeg"));
        // A line that merely starts like the boundary stays in the data.
        assert_eq!(parts[1].data, b"\xff\xd8\xff\r\n--X");
        assert_eq!(parts[2].filename.as_deref(), Some(""));
        assert!(parts[2].data.is_empty());
    }

    proptest::proptest! {
        /// Any bytes: an answer, never a panic; and fields written by a browser read back as written.
        #[test]
        fn any_body_is_answered_and_fields_round_trip(
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            fields in proptest::collection::vec(("[a-z_]{1,12}", "[ -~]{0,40}"), 0..6),
        ) {
            let _ = parse(&junk, "b0undary");
            let mut body = Vec::new();
            for (name, value) in &fields {
                body.extend_from_slice(
                    format!("--b0undary\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            body.extend_from_slice(b"--b0undary--\r\n");
            if fields.is_empty() {
                // A form with no part at all is just the closing boundary.
                proptest::prop_assert_eq!(parse(&body, "b0undary").map(|p| p.len()), Ok(0));
            } else {
                let parts = parse(&body, "b0undary").unwrap();
                let read: Vec<(String, String)> = parts
                    .iter()
                    .map(|p| (p.name.clone(), p.text().unwrap().to_string()))
                    .collect();
                proptest::prop_assert_eq!(read, fields);
            }
        }
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(parse(b"nothing here", "XyZ").is_err());
        assert!(
            parse(
                b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
                "XyZ"
            )
            .is_err()
        );
        assert!(
            parse(
                b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--",
                "XyZ"
            )
            .is_err()
        );
        assert!(parse(b"--XyZjunk", "XyZ").is_err());
    }
}
