//! Server side of RFC 6455: the handshake key, encoding of (unmasked) server
//! frames and a cancel-safe reader of (masked) client frames.
//!
//! The simulator speaks WebSocket at the frame level on purpose: a fault injector
//! has to write pre-encoded frames, send malformed ones and reset TCP
//! connections, which a general-purpose WebSocket crate hides.

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Frame opcodes.
pub mod op {
    /// Continuation frame.
    pub const CONT: u8 = 0x0;
    /// Text frame.
    pub const TEXT: u8 = 0x1;
    /// Binary frame.
    pub const BINARY: u8 = 0x2;
    /// Close frame.
    pub const CLOSE: u8 = 0x8;
    /// Ping frame.
    pub const PING: u8 = 0x9;
    /// Pong frame.
    pub const PONG: u8 = 0xA;
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(client_key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(client_key);
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Appends one unmasked, final server frame to `out`.
pub fn encode_into(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// One unmasked, final server frame.
pub fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(payload.len() + 10);
    encode_into(&mut v, opcode, payload);
    Bytes::from(v)
}

/// A close frame with a status code and reason.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut p = Vec::with_capacity(2 + reason.len());
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    encode(op::CLOSE, &p)
}

/// A complete message from the client (fragments already joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMsg {
    /// A text message (validated UTF-8).
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// A ping with its payload.
    Ping(Bytes),
    /// A pong with its payload.
    Pong(Bytes),
    /// A close frame: code (if any) and reason.
    Close(Option<u16>, String),
}

/// Why reading the client stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The TCP stream ended or failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The client broke RFC 6455; carries the close code to answer with.
    #[error("protocol violation ({code}): {msg}")]
    Protocol {
        /// Close code to send (1002, 1007 or 1009).
        code: u16,
        /// What was wrong.
        msg: &'static str,
    },
}

/// Reads client frames from a byte stream. `next` is cancel-safe: bytes already
/// read stay in the internal buffer.
#[derive(Debug)]
pub struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    max: usize,
    partial: Option<(u8, Vec<u8>)>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader that starts with `leftover` bytes already received.
    pub fn new(io: R, leftover: Bytes, max_message: usize) -> FrameReader<R> {
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(&leftover);
        FrameReader { io, buf, max: max_message, partial: None }
    }

    /// The next complete client message.
    pub async fn next(&mut self) -> Result<ClientMsg, ReadError> {
        loop {
            if let Some(msg) = self.try_parse()? {
                return Ok(msg);
            }
            let n = self.io.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    fn try_parse(&mut self) -> Result<Option<ClientMsg>, ReadError> {
        loop {
            let Some((fin, opcode, payload)) = self.parse_frame()? else {
                return Ok(None);
            };
            let proto = |msg| ReadError::Protocol { code: 1002, msg };
            match opcode {
                op::PING => return Ok(Some(ClientMsg::Ping(payload))),
                op::PONG => return Ok(Some(ClientMsg::Pong(payload))),
                op::CLOSE => {
                    let (code, reason) = if payload.len() >= 2 {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        (Some(code), String::from_utf8_lossy(&payload[2..]).into_owned())
                    } else {
                        (None, String::new())
                    };
                    return Ok(Some(ClientMsg::Close(code, reason)));
                }
                op::TEXT | op::BINARY => {
                    if self.partial.is_some() {
                        return Err(proto("new data frame inside a fragmented message"));
                    }
                    if fin {
                        return finish(opcode, payload.to_vec()).map(Some);
                    }
                    self.partial = Some((opcode, payload.to_vec()));
                }
                op::CONT => {
                    let Some((first, mut data)) = self.partial.take() else {
                        return Err(proto("continuation without a start frame"));
                    };
                    if data.len() + payload.len() > self.max {
                        return Err(ReadError::Protocol { code: 1009, msg: "message too big" });
                    }
                    data.extend_from_slice(&payload);
                    if fin {
                        return finish(first, data).map(Some);
                    }
                    self.partial = Some((first, data));
                }
                _ => return Err(proto("reserved opcode")),
            }
        }
    }

    /// One raw frame: (fin, opcode, unmasked payload).
    fn parse_frame(&mut self) -> Result<Option<(bool, u8, Bytes)>, ReadError> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        if b[0] & 0x70 != 0 {
            return Err(ReadError::Protocol { code: 1002, msg: "reserved bits set" });
        }
        let opcode = b[0] & 0x0F;
        if b[1] & 0x80 == 0 {
            return Err(ReadError::Protocol { code: 1002, msg: "client frame not masked" });
        }
        let (len, mut pos) = match b[1] & 0x7F {
            126 => {
                if b.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([b[2], b[3]]) as u64, 4)
            }
            127 => {
                if b.len() < 10 {
                    return Ok(None);
                }
                let mut a = [0u8; 8];
                a.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(a), 10)
            }
            n => (n as u64, 2),
        };
        if opcode >= 0x8 && (len > 125 || !fin) {
            return Err(ReadError::Protocol { code: 1002, msg: "invalid control frame" });
        }
        if len > self.max as u64 {
            return Err(ReadError::Protocol { code: 1009, msg: "frame too big" });
        }
        let len = len as usize;
        if b.len() < pos + 4 + len {
            return Ok(None);
        }
        let mask = [b[pos], b[pos + 1], b[pos + 2], b[pos + 3]];
        pos += 4;
        self.buf.advance(pos);
        let mut payload = self.buf.split_to(len);
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i & 3];
        }
        Ok(Some((fin, opcode, payload.freeze())))
    }
}

fn finish(opcode: u8, data: Vec<u8>) -> Result<ClientMsg, ReadError> {
    if opcode == op::TEXT {
        String::from_utf8(data)
            .map(ClientMsg::Text)
            .map_err(|_| ReadError::Protocol { code: 1007, msg: "text frame is not UTF-8" })
    } else {
        Ok(ClientMsg::Binary(Bytes::from(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut v = vec![(if fin { 0x80 } else { 0 }) | opcode];
        if payload.len() < 126 {
            v.push(0x80 | payload.len() as u8);
        } else {
            v.push(0x80 | 126);
            v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(&mask);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        v
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn encodes_the_three_length_forms() {
        assert_eq!(&encode(op::TEXT, b"hi")[..], &[0x81, 2, b'h', b'i']);
        let mid = encode(op::TEXT, &[b'a'; 300]);
        assert_eq!(&mid[..4], &[0x81, 126, 1, 44]);
        let big = encode(op::BINARY, &vec![0u8; 70_000]);
        assert_eq!(big[1], 127);
        assert_eq!(big.len(), 70_000 + 10);
    }

    #[tokio::test]
    async fn reads_fragmented_text_and_control_frames_split_across_reads() {
        let mut wire = masked(op::TEXT, false, b"hel");
        wire.extend(masked(op::PING, true, b"p1"));
        wire.extend(masked(op::CONT, true, b"lo"));
        wire.extend(masked(op::CLOSE, true, &[0x03, 0xE8, b'b', b'y', b'e']));
        // Feed the bytes one at a time through a duplex pipe.
        let (mut tx, rx) = tokio::io::duplex(1);
        let feeder = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for b in wire {
                tx.write_all(&[b]).await.unwrap();
            }
        });
        let mut r = FrameReader::new(rx, Bytes::new(), 1024);
        assert_eq!(r.next().await.unwrap(), ClientMsg::Ping(Bytes::from_static(b"p1")));
        assert_eq!(r.next().await.unwrap(), ClientMsg::Text("hello".into()));
        assert_eq!(r.next().await.unwrap(), ClientMsg::Close(Some(1000), "bye".into()));
        feeder.await.unwrap();
    }

    #[tokio::test]
    async fn rejects_unmasked_and_oversized_frames() {
        let unmasked = encode(op::TEXT, b"x");
        let mut r = FrameReader::new(tokio::io::empty(), unmasked, 1024);
        assert!(matches!(r.next().await, Err(ReadError::Protocol { code: 1002, .. })));
        let big = masked(op::TEXT, true, &[b'a'; 200]);
        let mut r = FrameReader::new(tokio::io::empty(), Bytes::from(big), 100);
        assert!(matches!(r.next().await, Err(ReadError::Protocol { code: 1009, .. })));
    }
}
