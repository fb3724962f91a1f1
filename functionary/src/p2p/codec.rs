//! The block-range request-response codec: one postcard value per stream, behind a 4-byte big-endian length
//! prefix, with hard size caps checked before anything is allocated. Decoding never panics.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};

/// The largest encoded request we accept (a request is two varints).
pub(crate) const MAX_REQUEST_BYTES: usize = 64;
/// Bytes postcard spends on a response besides the block bytes: the outer length plus one length per block
/// (a u32-range varint takes at most 5 bytes).
const VARINT_MAX_BYTES: usize = 5;

/// Asks a peer for consensus-encoded blocks from `start_height` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRequest {
    /// The first height wanted.
    pub start_height: u32,
    /// How many blocks at most (clamped to [`super::MAX_BLOCKS_PER_REQUEST`]).
    pub count: u32,
}

/// The answer to a [`BlockRequest`]: consecutive consensus-encoded blocks from the requested height.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BlockResponse {
    /// The blocks, lowest height first.
    pub blocks: Vec<Vec<u8>>,
}

impl BlockResponse {
    /// Keeps the longest prefix of `blocks` whose encoding fits in `max_bytes`; returns the response and how many
    /// blocks were dropped.
    pub fn fitting(blocks: Vec<Vec<u8>>, max_bytes: usize) -> (BlockResponse, usize) {
        let total = blocks.len();
        let mut size = VARINT_MAX_BYTES;
        let mut keep = 0;
        for block in &blocks {
            let encoded = block.len().saturating_add(VARINT_MAX_BYTES);
            if size.saturating_add(encoded) > max_bytes {
                break;
            }
            size += encoded;
            keep += 1;
        }
        let mut blocks = blocks;
        blocks.truncate(keep);
        (BlockResponse { blocks }, total - keep)
    }
}

/// The request-response codec for [`super::BLOCKS_PROTOCOL`].
#[derive(Debug, Clone)]
pub(crate) struct BlockCodec {
    max_response_bytes: usize,
}

impl BlockCodec {
    /// A codec that refuses responses larger than `max_response_bytes` (encoded, without the length prefix).
    pub(crate) fn new(max_response_bytes: usize) -> Self {
        BlockCodec { max_response_bytes }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one length-prefixed frame of at most `max` bytes.
pub(crate) async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
) -> io::Result<Vec<u8>> {
    let mut len_bytes = [0u8; 4];
    io.read_exact(&mut len_bytes).await?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes))
        .map_err(|_| invalid("frame length overflows usize".into()))?;
    if len > max {
        return Err(invalid(format!(
            "frame of {len} bytes exceeds the limit of {max} bytes"
        )));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Writes one length-prefixed frame of at most `max` bytes and closes the write side.
pub(crate) async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
    max: usize,
) -> io::Result<()> {
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "frame of {} bytes exceeds the limit of {max} bytes",
                bytes.len()
            ),
        ));
    }
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame longer than u32"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

fn encode<V: Serialize>(value: &V) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value)
        .map_err(|e| io::Error::other(format!("postcard encoding failed: {e}")))
}

fn decode<'a, V: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> io::Result<V> {
    postcard::from_bytes(bytes).map_err(|e| invalid(format!("malformed {what}: {e}")))
}

impl libp2p::request_response::Codec for BlockCodec {
    type Protocol = StreamProtocol;
    type Request = BlockRequest;
    type Response = BlockResponse;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<BlockRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io, MAX_REQUEST_BYTES).await?;
        decode(&frame, "block request")
    }

    async fn read_response<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
    ) -> io::Result<BlockResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io, self.max_response_bytes).await?;
        decode(&frame, "block response")
    }

    async fn write_request<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        req: BlockRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &encode(&req)?, MAX_REQUEST_BYTES).await
    }

    async fn write_response<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        res: BlockResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &encode(&res)?, self.max_response_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    fn protocol() -> StreamProtocol {
        StreamProtocol::new(super::super::BLOCKS_PROTOCOL)
    }

    #[tokio::test]
    async fn request_and_response_round_trip() {
        let mut codec = BlockCodec::new(10_000);
        let req = BlockRequest {
            start_height: 7,
            count: 500,
        };
        let mut buf = Cursor::new(Vec::new());
        codec
            .write_request(&protocol(), &mut buf, req)
            .await
            .unwrap();
        let mut rd = Cursor::new(buf.into_inner());
        assert_eq!(codec.read_request(&protocol(), &mut rd).await.unwrap(), req);

        let res = BlockResponse {
            blocks: vec![vec![1, 2, 3], vec![], vec![9; 300]],
        };
        let mut buf = Cursor::new(Vec::new());
        codec
            .write_response(&protocol(), &mut buf, res.clone())
            .await
            .unwrap();
        let mut rd = Cursor::new(buf.into_inner());
        assert_eq!(
            codec.read_response(&protocol(), &mut rd).await.unwrap(),
            res
        );
    }

    #[tokio::test]
    async fn oversized_and_hostile_frames_are_errors() {
        let mut codec = BlockCodec::new(100);
        // Declared length above the cap: refused before allocation.
        let mut rd = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let err = codec.read_response(&protocol(), &mut rd).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // Truncated frame.
        let mut rd = Cursor::new(vec![0, 0, 0, 10, 1, 2]);
        assert!(codec.read_response(&protocol(), &mut rd).await.is_err());
        // Garbage inside a well-sized frame: a vector claiming 2^32 elements.
        let mut frame = vec![0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f];
        let mut rd = Cursor::new(std::mem::take(&mut frame));
        assert!(codec.read_response(&protocol(), &mut rd).await.is_err());
        // Requests are capped at MAX_REQUEST_BYTES.
        let mut rd = Cursor::new(vec![0, 0, 1, 0]);
        assert!(codec.read_request(&protocol(), &mut rd).await.is_err());
        // Writing more than the cap fails instead of sending.
        let big = BlockResponse {
            blocks: vec![vec![0; 200]],
        };
        let mut buf = Cursor::new(Vec::new());
        assert!(codec
            .write_response(&protocol(), &mut buf, big)
            .await
            .is_err());
    }

    #[test]
    fn fitting_keeps_a_prefix_within_the_cap() {
        let blocks = vec![vec![0u8; 40], vec![0u8; 40], vec![0u8; 40]];
        let (res, dropped) = BlockResponse::fitting(blocks.clone(), 100);
        assert_eq!((res.blocks.len(), dropped), (2, 1));
        assert!(postcard::to_stdvec(&res).unwrap().len() <= 100);
        let (res, dropped) = BlockResponse::fitting(blocks, 10);
        assert_eq!((res.blocks.len(), dropped), (0, 3));
    }

    #[test]
    fn random_bytes_never_panic_the_decoder() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let len = rng.gen_range(0..64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let _ = postcard::from_bytes::<BlockResponse>(&bytes);
            let _ = postcard::from_bytes::<BlockRequest>(&bytes);
        }
    }
}
