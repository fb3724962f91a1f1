//! The signer's wire protocol: length-prefixed postcard frames over a Unix stream socket.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of postcard. The length is checked against
//! [`MAX_FRAME_BYTES`] before anything is allocated, and a payload must decode completely (no trailing bytes).
//! The client speaks first; every request gets exactly one response, in order. The first request of a connection
//! should be [`SignerRequest::Hello`]: a signer answers a version it does not speak with
//! [`SignerResponse::ProtocolError`].

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest accepted frame payload (64 KiB; a commit certificate of 15 members is about 1.1 KB).
pub const MAX_FRAME_BYTES: u32 = 64 * 1024;

/// A request to the signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignerRequest {
    /// Opens the conversation: the client's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`] of the client.
        version: u32,
    },
    /// Sign the block hash at a height (the guard's `sign_block`).
    SignBlock {
        /// Block height.
        height: u32,
        /// The signing digest (block hash, raw byte order).
        block_hash: [u8; 32],
        /// The encoded commit certificate; `None` only to re-sign exactly the last approved decision.
        certificate: Option<Vec<u8>>,
    },
    /// The block-signing public key.
    PublicKey,
    /// Create the signer journal if it is missing. Accepted only from a process running as the signer's own uid
    /// (operator tools; refused from `signer.allowed_uid`). The daemon does not need it in the normal path: the
    /// ceremony's `member` step creates the journal together with a new key. (A daemon running as the signer's
    /// user still sends it on a member without blocks whose journal is missing.)
    CreateJournal,
}

/// The last approved block-signing decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSigned {
    /// Height.
    pub height: u32,
    /// Block hash (raw byte order).
    pub block_hash: [u8; 32],
}

impl From<hsm::SignedBlock> for LastSigned {
    fn from(b: hsm::SignedBlock) -> Self {
        LastSigned {
            height: b.height,
            block_hash: b.block_hash,
        }
    }
}

impl From<LastSigned> for hsm::SignedBlock {
    fn from(b: LastSigned) -> Self {
        hsm::SignedBlock {
            height: b.height,
            block_hash: b.block_hash,
        }
    }
}

/// The state of the signer's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalState {
    /// No journal file: the signer signs nothing until one is created or restored.
    Missing,
    /// Open and replayed.
    Open {
        /// The last approved decision, if any.
        last_signed: Option<LastSigned>,
    },
}

/// The signer's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignerResponse {
    /// Answer to [`SignerRequest::Hello`].
    Hello {
        /// The signer's [`PROTOCOL_VERSION`].
        version: u32,
        /// Compressed (33-byte) block-signing public key.
        public_key: Vec<u8>,
        /// Its journal.
        journal: JournalState,
    },
    /// The signature: DER with the SIGHASH_ALL byte (0x01) appended.
    Signature(Vec<u8>),
    /// The guard refused (or the HSM failed); why.
    Refused(String),
    /// Compressed (33-byte) block-signing public key.
    PublicKey(Vec<u8>),
    /// Answer to [`SignerRequest::CreateJournal`].
    Journal(JournalState),
    /// The request could not be understood (malformed frame, unsupported version, too many connections).
    ProtocolError(String),
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed (including timeouts).
    #[error("signer socket: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection in the middle of a frame.
    #[error("signer socket closed in the middle of a frame")]
    Truncated,
    /// The length prefix is above [`MAX_FRAME_BYTES`].
    #[error("frame of {len} bytes announced; at most {MAX_FRAME_BYTES} accepted")]
    TooLarge {
        /// The announced length.
        len: u32,
    },
    /// The payload is not a valid message.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// The message could not be encoded (or is above [`MAX_FRAME_BYTES`]).
    #[error("cannot encode frame: {0}")]
    Encode(String),
}

/// Writes one frame holding `message`.
pub fn write_frame<T: Serialize>(w: &mut impl Write, message: &T) -> Result<(), FrameError> {
    let body = postcard::to_allocvec(message).map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME_BYTES)
        .ok_or_else(|| FrameError::Encode(format!("{} bytes is too large", body.len())))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame. `Ok(None)` when the peer closed the connection cleanly between frames.
///
/// After [`FrameError::Decode`] the stream is still in step (the whole frame was consumed); after any other error
/// it is not, and the connection must be closed.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, FrameError> {
    let mut len_bytes = [0u8; 4];
    let mut got = 0;
    while got < len_bytes.len() {
        let Some(rest) = len_bytes.get_mut(got..) else {
            break;
        };
        match r.read(rest) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = u32::from_be_bytes(len_bytes);
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge { len });
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    let (message, rest) =
        postcard::take_from_bytes::<T>(&body).map_err(|e| FrameError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Decode(format!(
            "{} trailing bytes after the message",
            rest.len()
        )));
    }
    Ok(Some(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = SignerRequest::SignBlock {
            height: 7,
            block_hash: [3; 32],
            certificate: Some(vec![1, 2, 3]),
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        assert_eq!(&buf[..4], &((buf.len() - 4) as u32).to_be_bytes());
        let mut cursor = std::io::Cursor::new(buf);
        assert_eq!(read_frame::<SignerRequest>(&mut cursor).unwrap(), Some(req));
        assert!(read_frame::<SignerRequest>(&mut cursor).unwrap().is_none());
    }

    #[test]
    fn oversized_length_is_refused_before_reading_the_body() {
        let mut bytes = (MAX_FRAME_BYTES + 1).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        let err = read_frame::<SignerRequest>(&mut std::io::Cursor::new(bytes)).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len } if len == MAX_FRAME_BYTES + 1));
    }

    #[test]
    fn garbage_truncation_and_trailing_bytes_are_errors() {
        // Variant index 200 does not exist.
        let err = read_frame::<SignerRequest>(&mut std::io::Cursor::new(vec![0, 0, 0, 2, 200, 1]))
            .unwrap_err();
        assert!(matches!(err, FrameError::Decode(_)), "{err:?}");
        let err = read_frame::<SignerRequest>(&mut std::io::Cursor::new(vec![0, 0, 0, 9, 1]))
            .unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err:?}");
        let err = read_frame::<SignerRequest>(&mut std::io::Cursor::new(vec![0, 0])).unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err:?}");
        // PublicKey (variant 2) followed by a stray byte.
        let err = read_frame::<SignerRequest>(&mut std::io::Cursor::new(vec![0, 0, 0, 2, 2, 9]))
            .unwrap_err();
        assert!(matches!(err, FrameError::Decode(_)), "{err:?}");
    }
}
