//! Length-prefixed JSON frames on the control channel (sans-IO).

use serde::{Deserialize, Serialize};

/// The largest frame either side accepts. A config with many sites stays far below this.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// A control-channel frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("control frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    #[error("control frame is not a valid message: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Appends one length-prefixed message to `out`.
pub fn encode_frame<T: Serialize>(message: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut *out, message)?;
    let len = out.len() - start - 4;
    if len > MAX_FRAME_LEN {
        out.truncate(start);
        return Err(FrameError::TooLarge(len));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Takes one message from the front of `input`: `Ok(None)` when the frame is not complete yet,
/// otherwise the message and the number of bytes it used.
pub fn decode_frame<T: for<'de> Deserialize<'de>>(
    input: &[u8],
) -> Result<Option<(T, usize)>, FrameError> {
    let Some(prefix) = input.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(prefix.try_into().expect("four bytes")) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    let Some(body) = input.get(4..4 + len) else {
        return Ok(None);
    };
    Ok(Some((serde_json::from_slice(body)?, 4 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ToFrontend;
    use crate::control::ToMaster;

    #[test]
    fn frames_round_trip_when_split_anywhere() {
        let message = ToFrontend::WorkerUp {
            pool: "php".into(),
            worker: 7,
            pid: 4242,
            socket: "/run/paddock/php-7.sock".into(),
            slots: 1,
            ready_after_ms: Some(312),
            cpu: Some(1),
        };
        let mut wire = Vec::new();
        encode_frame(&message, &mut wire).unwrap();
        encode_frame(&ToFrontend::Shutdown { deadline_ms: 5 }, &mut wire).unwrap();
        for cut in 0..wire.len() {
            let first = decode_frame::<ToFrontend>(&wire[..cut]).unwrap();
            let frame_len = 4 + u32::from_be_bytes(wire[..4].try_into().unwrap()) as usize;
            assert_eq!(first.is_some(), cut >= frame_len, "cut at {cut}");
        }
        let (first, used) = decode_frame::<ToFrontend>(&wire).unwrap().unwrap();
        assert_eq!(first, message);
        let (second, _) = decode_frame::<ToFrontend>(&wire[used..]).unwrap().unwrap();
        assert_eq!(second, ToFrontend::Shutdown { deadline_ms: 5 });
    }

    /// A worker announced by a master built before `cpu` existed (a binary upgrade hands the
    /// front end over to a new master): read as a worker pinned nowhere.
    #[test]
    fn a_worker_up_without_its_cpu_reads_as_not_pinned() {
        let old = br#"{"WorkerUp":{"pool":"php","worker":7,"pid":4242,"socket":"/run/p.sock","slots":1,"ready_after_ms":null}}"#;
        let mut wire = (old.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(old);
        let (message, _) = decode_frame::<ToFrontend>(&wire).unwrap().unwrap();
        assert!(matches!(
            message,
            ToFrontend::WorkerUp {
                cpu: None,
                pid: 4242,
                ..
            }
        ));
    }

    #[test]
    fn oversized_length_prefix_is_rejected_before_buffering() {
        let wire = u32::MAX.to_be_bytes();
        assert!(matches!(
            decode_frame::<ToMaster>(&wire),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn garbage_body_is_malformed() {
        let mut wire = 3u32.to_be_bytes().to_vec();
        wire.extend_from_slice(b"{{{");
        assert!(matches!(
            decode_frame::<ToMaster>(&wire),
            Err(FrameError::Malformed(_))
        ));
    }
}
