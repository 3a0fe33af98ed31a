//! IHE Patient Care Device (PCD) messages as Infusafe speaks them, with no I/O: the MLLP frame (`mllp`), HL7 v2
//! messages with their escape sequences (`hl7`), the MDC codes and Infusafe's local codes (`codes`), and the
//! profile itself (`profile`): device observations as ORU^R01 (PCD-01), alarm reports as ORU^R40 (PCD-04), and
//! the ACK that answers either. Both ends use it: the server's MLLP listener and outbound alarm sender, and the
//! simulated pump that speaks PCD (`link::pcdlink`). See docs/api.md, "IHE PCD over MLLP".

pub mod codes;
pub mod hl7;
pub mod mllp;
pub mod profile;

pub use hl7::{Hl7Error, Message, Segment};
pub use mllp::{Deframer, FrameError, frame};
pub use profile::{
    AckCode, AlarmReport, ErrorCode, Inactivation, Inbound, Observation, Phase, Refused, Rejection,
    ack, build_alarm, build_observation, parse_ack, parse_inbound,
};
