//! The CSTP frame codec (AnyConnect tunnel over TLS) and its DTLS sibling.
//!
//! A CSTP frame is an 8-byte header followed by the payload:
//!
//! | offset | size | value |
//! |---|---|---|
//! | 0 | 4 | `53 54 46 01` ("STF", 1) |
//! | 4 | 2 | payload length, big-endian, header excluded |
//! | 6 | 1 | [`FrameType`] |
//! | 7 | 1 | `00` |
//!
//! openconnect writes exactly one frame per TLS record and requires the same of us, but a
//! TLS read may still hand over part of a record or several records, so received bytes go
//! through a [`FrameDecoder`]. Sending is the caller's business: encode one frame into a
//! buffer and write it with one call.
//!
//! Nothing on the data path allocates: [`encode`] and [`encode_header`] write into a
//! caller-owned buffer (the usual trick is to read the IP packet from the TUN device at
//! offset [`HEADER_LEN`] and put the header in front of it), and decoded [`Frame`]s borrow
//! the bytes they were decoded from.
//!
//! Compression is never negotiated, so a COMPRESSED frame (type `0x08`) is refused with
//! [`CstpError::CompressionNotNegotiated`].
//!
//! Errors come in two kinds (see [`CstpError::is_fatal`]): a broken header (bad magic,
//! non-zero reserved byte, oversized length) desynchronises the stream and ends it; a
//! frame with a valid header but an unacceptable type or payload can be skipped.

mod decoder;
mod dtls;

pub use decoder::{DEFAULT_DECODER_CAPACITY, FrameDecoder};
pub use dtls::{dpd_response_for, dpd_response_in_place, dtls_decode, dtls_encode};

/// `53 54 46 01`: "STF" and protocol version 1.
pub const MAGIC: [u8; 4] = *b"STF\x01";

/// Length of the CSTP header in front of every payload.
pub const HEADER_LEN: usize = 8;

/// Largest frame, header included: one frame travels in one TLS record, and a TLS record
/// carries at most 16,384 bytes of plaintext.
pub const MAX_FRAME_LEN: usize = 16_384;

/// Largest payload we send or accept, on CSTP and on DTLS.
///
/// A tunnel MTU is around 1,400 bytes, so real traffic is far below this.
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN - HEADER_LEN;

/// The code byte openconnect puts in front of the reason text of DISCONNECT and
/// TERMINATE (`b0 "Aborted by caller"`, `b0 "Administrator reset"`).
pub const REASON_CODE: u8 = 0xb0;

/// Raw value of the COMPRESSED frame type, which we never accept.
pub const COMPRESSED_TYPE: u8 = 0x08;

/// The kind of a CSTP/DTLS frame (byte 6 of the CSTP header, byte 0 of a DTLS record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// `0x00`: one IPv4 or IPv6 packet.
    Data,
    /// `0x03`: dead peer detection request; answer with a DPD response.
    DpdRequest,
    /// `0x04`: answer to a DPD request.
    DpdResponse,
    /// `0x05`: the client logs out (or answers a server kick).
    Disconnect,
    /// `0x07`: the client has sent nothing for a while; discard.
    Keepalive,
    /// `0x09`: the server ends the session.
    Terminate,
}

impl FrameType {
    /// Every frame type we speak, in wire order.
    pub const ALL: [FrameType; 6] = [
        FrameType::Data,
        FrameType::DpdRequest,
        FrameType::DpdResponse,
        FrameType::Disconnect,
        FrameType::Keepalive,
        FrameType::Terminate,
    ];

    /// The byte on the wire.
    pub const fn to_byte(self) -> u8 {
        match self {
            FrameType::Data => 0x00,
            FrameType::DpdRequest => 0x03,
            FrameType::DpdResponse => 0x04,
            FrameType::Disconnect => 0x05,
            FrameType::Keepalive => 0x07,
            FrameType::Terminate => 0x09,
        }
    }

    /// The frame type of a wire byte; COMPRESSED and unknown values are errors.
    pub const fn from_byte(byte: u8) -> Result<FrameType, CstpError> {
        match byte {
            0x00 => Ok(FrameType::Data),
            0x03 => Ok(FrameType::DpdRequest),
            0x04 => Ok(FrameType::DpdResponse),
            0x05 => Ok(FrameType::Disconnect),
            0x07 => Ok(FrameType::Keepalive),
            0x09 => Ok(FrameType::Terminate),
            COMPRESSED_TYPE => Err(CstpError::CompressionNotNegotiated),
            other => Err(CstpError::UnknownType { frame_type: other }),
        }
    }

    /// Name as in the protocol description (`DATA`, `DPD-REQ`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            FrameType::Data => "DATA",
            FrameType::DpdRequest => "DPD-REQ",
            FrameType::DpdResponse => "DPD-RESP",
            FrameType::Disconnect => "DISCONNECT",
            FrameType::Keepalive => "KEEPALIVE",
            FrameType::Terminate => "TERMINATE",
        }
    }
}

impl std::fmt::Display for FrameType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a peer ends the session: a code byte and an ASCII text, e.g.
/// `b0 "Aborted by caller"` (client SIGINT) or `b0 "Administrator reset"` (server kick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason<'a> {
    pub code: u8,
    /// The text as sent; openconnect sends ASCII but nothing enforces it.
    pub text: &'a [u8],
}

impl<'a> Reason<'a> {
    /// A reason with the usual code [`REASON_CODE`].
    pub const fn new(text: &'a str) -> Reason<'a> {
        Reason {
            code: REASON_CODE,
            text: text.as_bytes(),
        }
    }

    /// The text for logs, with anything that is not UTF-8 replaced.
    pub fn text_lossy(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.text)
    }

    const fn payload_len(&self) -> usize {
        1 + self.text.len()
    }
}

/// One decoded frame, borrowing its payload from the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An IP packet (never empty, first nibble 4 or 6).
    Data(&'a [u8]),
    /// Payload is usually empty on CSTP; on DTLS an MTU probe carries padding.
    DpdRequest(&'a [u8]),
    /// Echoes the request's payload.
    DpdResponse(&'a [u8]),
    Disconnect(Reason<'a>),
    /// Always without payload.
    Keepalive,
    Terminate(Reason<'a>),
}

impl<'a> Frame<'a> {
    pub const fn frame_type(&self) -> FrameType {
        match self {
            Frame::Data(_) => FrameType::Data,
            Frame::DpdRequest(_) => FrameType::DpdRequest,
            Frame::DpdResponse(_) => FrameType::DpdResponse,
            Frame::Disconnect(_) => FrameType::Disconnect,
            Frame::Keepalive => FrameType::Keepalive,
            Frame::Terminate(_) => FrameType::Terminate,
        }
    }

    /// Length of the payload on the wire (header excluded).
    pub const fn payload_len(&self) -> usize {
        match self {
            Frame::Data(p) | Frame::DpdRequest(p) | Frame::DpdResponse(p) => p.len(),
            Frame::Disconnect(r) | Frame::Terminate(r) => r.payload_len(),
            Frame::Keepalive => 0,
        }
    }

    /// The answer to a DPD request: a DPD response echoing its payload (what openconnect
    /// expects on CSTP and DTLS alike); `None` for any other frame.
    pub const fn dpd_response(&self) -> Option<Frame<'a>> {
        match *self {
            Frame::DpdRequest(payload) => Some(Frame::DpdResponse(payload)),
            _ => None,
        }
    }

    /// Length of the whole CSTP frame, header included.
    pub const fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Checks that the payload is one a peer may send for this type (the same checks
    /// [`decode`] applies), so that everything we encode decodes again.
    fn check(&self) -> Result<(), CstpError> {
        let len = self.payload_len();
        if len > MAX_PAYLOAD_LEN {
            return Err(CstpError::PayloadTooLong {
                len,
                max: MAX_PAYLOAD_LEN,
            });
        }
        if let Frame::Data(packet) = self {
            check_ip_packet(packet)?;
        }
        Ok(())
    }

    /// Builds the frame of `frame_type` from a payload that passed the length check.
    fn from_payload(frame_type: FrameType, payload: &'a [u8]) -> Result<Frame<'a>, CstpError> {
        match frame_type {
            FrameType::Data => {
                check_ip_packet(payload)?;
                Ok(Frame::Data(payload))
            }
            FrameType::DpdRequest => Ok(Frame::DpdRequest(payload)),
            FrameType::DpdResponse => Ok(Frame::DpdResponse(payload)),
            FrameType::Disconnect => Ok(Frame::Disconnect(reason(frame_type, payload)?)),
            FrameType::Keepalive if payload.is_empty() => Ok(Frame::Keepalive),
            FrameType::Keepalive => Err(CstpError::UnexpectedPayload {
                frame_type,
                len: payload.len(),
            }),
            FrameType::Terminate => Ok(Frame::Terminate(reason(frame_type, payload)?)),
        }
    }

    /// Writes the payload into `out`, which is exactly `payload_len()` long.
    fn write_payload(&self, out: &mut [u8]) {
        match self {
            Frame::Data(p) | Frame::DpdRequest(p) | Frame::DpdResponse(p) => {
                out.copy_from_slice(p);
            }
            Frame::Disconnect(r) | Frame::Terminate(r) => {
                if let Some((code, text)) = out.split_first_mut() {
                    *code = r.code;
                    text.copy_from_slice(r.text);
                }
            }
            Frame::Keepalive => {}
        }
    }
}

/// Why bytes could not be encoded or decoded as a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CstpError {
    #[error(
        "CSTP header does not start with 53 54 46 01 (found {})",
        hex::encode(found)
    )]
    BadMagic { found: [u8; 4] },
    #[error("CSTP header byte 7 must be 0, found {found:#04x}")]
    NonZeroReservedByte { found: u8 },
    #[error("payload of {len} bytes is longer than the limit of {max}")]
    PayloadTooLong { len: usize, max: usize },
    #[error("unknown frame type {frame_type:#04x}")]
    UnknownType { frame_type: u8 },
    #[error("compressed frame received, but compression is never negotiated")]
    CompressionNotNegotiated,
    #[error("DATA frame without an IP packet")]
    EmptyData,
    #[error("DATA frame does not hold an IPv4 or IPv6 packet (IP version {version})")]
    NotAnIpPacket { version: u8 },
    #[error("{frame_type} frame must not carry a payload, got {len} bytes")]
    UnexpectedPayload { frame_type: FrameType, len: usize },
    #[error("{frame_type} frame without its reason code byte")]
    MissingReasonCode { frame_type: FrameType },
    #[error("output buffer of {available} bytes is too small, {needed} needed")]
    BufferTooSmall { needed: usize, available: usize },
    #[error("empty DTLS record (no type byte)")]
    EmptyDatagram,
    #[error("DTLS record is not a DPD request (type {found:#04x})")]
    NotDpdRequest { found: u8 },
}

impl CstpError {
    /// True when the byte stream cannot be trusted any more (the next frame's start is
    /// unknown), so the connection must end. False when only this one frame is bad and
    /// decoding can go on with the next one.
    pub const fn is_fatal(&self) -> bool {
        matches!(
            self,
            CstpError::BadMagic { .. }
                | CstpError::NonZeroReservedByte { .. }
                | CstpError::PayloadTooLong { .. }
        )
    }
}

/// A checked CSTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The raw type byte; not checked here (see [`FrameType::from_byte`]).
    pub frame_type: u8,
    /// Payload length, at most [`MAX_PAYLOAD_LEN`].
    pub payload_len: u16,
}

impl Header {
    /// Parses the header at the start of `input`; `Ok(None)` when fewer than
    /// [`HEADER_LEN`] bytes are there. Checks magic, reserved byte and length limit.
    pub fn parse(input: &[u8]) -> Result<Option<Header>, CstpError> {
        let Some(&[m0, m1, m2, m3, len_hi, len_lo, frame_type, reserved]) =
            input.first_chunk::<HEADER_LEN>()
        else {
            return Ok(None);
        };
        let found = [m0, m1, m2, m3];
        if found != MAGIC {
            return Err(CstpError::BadMagic { found });
        }
        if reserved != 0 {
            return Err(CstpError::NonZeroReservedByte { found: reserved });
        }
        let payload_len = u16::from_be_bytes([len_hi, len_lo]);
        if usize::from(payload_len) > MAX_PAYLOAD_LEN {
            return Err(CstpError::PayloadTooLong {
                len: usize::from(payload_len),
                max: MAX_PAYLOAD_LEN,
            });
        }
        Ok(Some(Header {
            frame_type,
            payload_len,
        }))
    }

    /// Length of the whole frame this header announces.
    pub const fn frame_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }
}

/// Result of [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A frame, and how many input bytes it took.
    Complete { frame: Frame<'a>, consumed: usize },
    /// The input holds only part of a frame; at least `needed` bytes in total are required.
    Incomplete { needed: usize },
}

/// Decodes the frame at the start of `input`.
///
/// On an error that is not [fatal](CstpError::is_fatal), the bad frame can be skipped:
/// its length is [`Header::frame_len`] of [`Header::parse`].
pub fn decode(input: &[u8]) -> Result<Decoded<'_>, CstpError> {
    let Some(header) = Header::parse(input)? else {
        return Ok(Decoded::Incomplete { needed: HEADER_LEN });
    };
    let frame_len = header.frame_len();
    let Some(payload) = input.get(HEADER_LEN..frame_len) else {
        return Ok(Decoded::Incomplete { needed: frame_len });
    };
    let frame_type = FrameType::from_byte(header.frame_type)?;
    let frame = Frame::from_payload(frame_type, payload)?;
    Ok(Decoded::Complete {
        frame,
        consumed: frame_len,
    })
}

/// Encodes `frame` at the start of `out`; returns the number of bytes written.
pub fn encode(frame: &Frame<'_>, out: &mut [u8]) -> Result<usize, CstpError> {
    frame.check()?;
    let len = frame.encoded_len();
    let available = out.len();
    let Some((header, payload)) = out
        .get_mut(..len)
        .and_then(|o| o.split_first_chunk_mut::<HEADER_LEN>())
    else {
        return Err(CstpError::BufferTooSmall {
            needed: len,
            available,
        });
    };
    write_header(frame.frame_type(), frame.payload_len(), header);
    frame.write_payload(payload);
    Ok(len)
}

/// Writes only the 8-byte header for a payload of `payload_len` bytes that the caller has
/// already placed (or will place) right after it; returns [`HEADER_LEN`].
///
/// This is the zero-copy path for DATA: read the packet into `buf[HEADER_LEN..]`, then
/// `encode_header(FrameType::Data, n, &mut buf)` and send `buf[..HEADER_LEN + n]`.
pub fn encode_header(
    frame_type: FrameType,
    payload_len: usize,
    out: &mut [u8],
) -> Result<usize, CstpError> {
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(CstpError::PayloadTooLong {
            len: payload_len,
            max: MAX_PAYLOAD_LEN,
        });
    }
    match frame_type {
        FrameType::Data if payload_len == 0 => return Err(CstpError::EmptyData),
        FrameType::Keepalive if payload_len != 0 => {
            return Err(CstpError::UnexpectedPayload {
                frame_type,
                len: payload_len,
            });
        }
        FrameType::Disconnect | FrameType::Terminate if payload_len == 0 => {
            return Err(CstpError::MissingReasonCode { frame_type });
        }
        _ => {}
    }
    let available = out.len();
    let Some(header) = out.first_chunk_mut::<HEADER_LEN>() else {
        return Err(CstpError::BufferTooSmall {
            needed: HEADER_LEN,
            available,
        });
    };
    write_header(frame_type, payload_len, header);
    Ok(HEADER_LEN)
}

/// Appends the encoded `frame` to `out` (for control frames, where an allocation does not
/// matter); returns the number of bytes appended. `out` is unchanged on error.
pub fn encode_to_vec(frame: &Frame<'_>, out: &mut Vec<u8>) -> Result<usize, CstpError> {
    frame.check()?;
    let start = out.len();
    out.resize(start + frame.encoded_len(), 0);
    let written = out
        .get_mut(start..)
        .map_or(Ok(0), |tail| encode(frame, tail));
    if written.is_err() {
        out.truncate(start);
    }
    written
}

fn write_header(frame_type: FrameType, payload_len: usize, header: &mut [u8; HEADER_LEN]) {
    // Callers have checked payload_len <= MAX_PAYLOAD_LEN < u16::MAX.
    let [len_hi, len_lo] = u16::try_from(payload_len).unwrap_or(u16::MAX).to_be_bytes();
    let [m0, m1, m2, m3] = MAGIC;
    *header = [m0, m1, m2, m3, len_hi, len_lo, frame_type.to_byte(), 0];
}

fn check_ip_packet(packet: &[u8]) -> Result<(), CstpError> {
    let first = packet.first().ok_or(CstpError::EmptyData)?;
    match first >> 4 {
        4 | 6 => Ok(()),
        version => Err(CstpError::NotAnIpPacket { version }),
    }
}

fn reason(frame_type: FrameType, payload: &[u8]) -> Result<Reason<'_>, CstpError> {
    let (&code, text) = payload
        .split_first()
        .ok_or(CstpError::MissingReasonCode { frame_type })?;
    Ok(Reason { code, text })
}

#[cfg(test)]
mod tests;
