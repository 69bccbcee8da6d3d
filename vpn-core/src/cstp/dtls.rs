//! DTLS records: one type byte (the CSTP types) and the payload, one record per datagram.
//!
//! Every DTLS record stands alone, so every error concerns only that record.

use super::{CstpError, Frame, FrameType, MAX_PAYLOAD_LEN};

/// Encodes `frame` as a DTLS record at the start of `out`; returns the bytes written.
pub fn dtls_encode(frame: &Frame<'_>, out: &mut [u8]) -> Result<usize, CstpError> {
    frame.check()?;
    let len = 1 + frame.payload_len();
    let available = out.len();
    let Some((type_byte, payload)) = out.get_mut(..len).and_then(|o| o.split_first_mut()) else {
        return Err(CstpError::BufferTooSmall {
            needed: len,
            available,
        });
    };
    *type_byte = frame.frame_type().to_byte();
    frame.write_payload(payload);
    Ok(len)
}

/// Decodes one DTLS record (the plaintext of one datagram).
pub fn dtls_decode(record: &[u8]) -> Result<Frame<'_>, CstpError> {
    let (&type_byte, payload) = record.split_first().ok_or(CstpError::EmptyDatagram)?;
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(CstpError::PayloadTooLong {
            len: payload.len(),
            max: MAX_PAYLOAD_LEN,
        });
    }
    Frame::from_payload(FrameType::from_byte(type_byte)?, payload)
}

/// Writes the answer to a DTLS DPD request (including an MTU probe) into `out`: the same
/// bytes, same length, with the type byte turned into DPD-RESP. Returns the length.
///
/// openconnect measures the MTU with padded probes and shrinks the tunnel MTU to 576 if
/// they are not echoed at full length.
pub fn dpd_response_for(request: &[u8], out: &mut [u8]) -> Result<usize, CstpError> {
    check_dpd_request(request)?;
    let available = out.len();
    let Some(dst) = out.get_mut(..request.len()) else {
        return Err(CstpError::BufferTooSmall {
            needed: request.len(),
            available,
        });
    };
    dst.copy_from_slice(request);
    if let Some(type_byte) = dst.first_mut() {
        *type_byte = FrameType::DpdResponse.to_byte();
    }
    Ok(request.len())
}

/// Like [`dpd_response_for`], but turns the received record into the answer in place.
pub fn dpd_response_in_place(record: &mut [u8]) -> Result<(), CstpError> {
    check_dpd_request(record)?;
    if let Some(type_byte) = record.first_mut() {
        *type_byte = FrameType::DpdResponse.to_byte();
    }
    Ok(())
}

fn check_dpd_request(record: &[u8]) -> Result<(), CstpError> {
    let (&type_byte, payload) = record.split_first().ok_or(CstpError::EmptyDatagram)?;
    if type_byte != FrameType::DpdRequest.to_byte() {
        return Err(CstpError::NotDpdRequest { found: type_byte });
    }
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(CstpError::PayloadTooLong {
            len: payload.len(),
            max: MAX_PAYLOAD_LEN,
        });
    }
    Ok(())
}
