//! Minimal Lower Layer Protocol framing: every message travels as `0x0B` + bytes + `0x1C 0x0D`. The deframer is
//! fed whatever the socket returned (a frame may arrive in pieces, several frames at once) and hands back whole
//! frames; it never holds more than its bound, and bytes outside a frame other than CR and LF are an error (the
//! stream is not MLLP, or lost its place), after which the caller closes the connection.

/// Start of a frame.
pub const START: u8 = 0x0B;
/// End of a frame: `END` then `CR`.
pub const END: u8 = 0x1C;
pub const CR: u8 = 0x0D;

/// The largest message the Infusafe listener accepts (a PCD-01 or PCD-04 message is a few kilobytes).
pub const FRAME_MAX: usize = 1024 * 1024;

/// One message, framed.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 3);
    out.push(START);
    out.extend_from_slice(payload);
    out.push(END);
    out.push(CR);
    out
}

/// Why a byte stream is not (or no longer) MLLP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame longer than {max} bytes")]
    Oversized { max: usize },
    #[error("byte 0x{byte:02X} outside a frame (a frame starts with 0x0B)")]
    OutsideFrame { byte: u8 },
    #[error("a new frame started (0x0B) before the previous one ended (0x1C 0x0D)")]
    StartInFrame,
    #[error("0x1C not followed by 0x0D")]
    BadEnd,
}

/// Reassembles frames from pieces of a byte stream.
#[derive(Debug, Clone)]
pub struct Deframer {
    max: usize,
    buf: Vec<u8>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Between,
    InFrame,
    /// Saw 0x1C; the next byte must be 0x0D.
    AtEnd,
}

impl Deframer {
    /// A deframer that refuses frames longer than `max` bytes.
    pub fn new(max: usize) -> Deframer {
        Deframer {
            max,
            buf: Vec::new(),
            state: State::Between,
        }
    }

    /// Whether a frame has started and not ended (a connection closed now lost a partial message).
    pub fn is_mid_frame(&self) -> bool {
        self.state != State::Between
    }

    /// Feed bytes; returns the frames they completed, in order. After an error the deframer must not be fed
    /// again (the connection is closed).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut frames = Vec::new();
        for &b in bytes {
            match self.state {
                State::Between => match b {
                    START => self.state = State::InFrame,
                    CR | b'\n' => {}
                    byte => return Err(FrameError::OutsideFrame { byte }),
                },
                State::InFrame => match b {
                    END => self.state = State::AtEnd,
                    START => return Err(FrameError::StartInFrame),
                    _ => {
                        if self.buf.len() >= self.max {
                            return Err(FrameError::Oversized { max: self.max });
                        }
                        self.buf.push(b);
                    }
                },
                State::AtEnd => {
                    if b != CR {
                        return Err(FrameError::BadEnd);
                    }
                    frames.push(std::mem::take(&mut self.buf));
                    self.state = State::Between;
                }
            }
        }
        Ok(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_arrive_whole_split_and_several_at_once() {
        let mut d = Deframer::new(100);
        let mut stream = frame(b"MSH|one");
        stream.extend(frame(b"MSH|two"));
        assert_eq!(
            d.push(&stream).unwrap(),
            vec![b"MSH|one".to_vec(), b"MSH|two".to_vec()]
        );
        let third = frame(b"MSH|three");
        assert!(d.push(&third[..4]).unwrap().is_empty());
        assert!(d.is_mid_frame());
        assert_eq!(d.push(&third[4..]).unwrap(), vec![b"MSH|three".to_vec()]);
        assert!(!d.is_mid_frame());
    }

    #[test]
    fn garbage_oversize_and_bad_ends_are_errors() {
        assert_eq!(
            Deframer::new(10).push(b"GET / HTTP/1.1"),
            Err(FrameError::OutsideFrame { byte: b'G' })
        );
        assert_eq!(
            Deframer::new(3).push(&frame(b"MSH|")),
            Err(FrameError::Oversized { max: 3 })
        );
        assert_eq!(
            Deframer::new(10).push(&[START, b'a', END, b'x']),
            Err(FrameError::BadEnd)
        );
        assert_eq!(
            Deframer::new(10).push(&[START, b'a', START]),
            Err(FrameError::StartInFrame)
        );
        assert_eq!(Deframer::new(10).push(b"\r\n\r\n"), Ok(vec![]));
    }
}
