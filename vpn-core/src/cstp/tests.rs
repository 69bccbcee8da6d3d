use proptest::prelude::*;

use super::*;

/// A tiny IPv4 "packet": only the version nibble matters to the codec.
const PING: &[u8] = &[0x45, 0x00, 0x00, 0x54, 1, 2, 3, 4];

fn one_of_each() -> Vec<Frame<'static>> {
    vec![
        Frame::Data(PING),
        Frame::Data(&[0x60, 0, 0, 0]),
        Frame::DpdRequest(&[]),
        Frame::DpdRequest(b"probe"),
        Frame::DpdResponse(&[]),
        Frame::DpdResponse(b"probe"),
        Frame::Disconnect(Reason::new("Aborted by caller")),
        Frame::Keepalive,
        Frame::Terminate(Reason::new("Administrator reset")),
        Frame::Terminate(Reason {
            code: 0x01,
            text: b"",
        }),
    ]
}

fn encoded(frame: &Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_to_vec(frame, &mut out).unwrap();
    out
}

fn decode_complete(bytes: &[u8]) -> (Frame<'_>, usize) {
    match decode(bytes).unwrap() {
        Decoded::Complete { frame, consumed } => (frame, consumed),
        Decoded::Incomplete { needed } => panic!("incomplete, needs {needed}"),
    }
}

#[test]
fn every_frame_type_round_trips_through_cstp() {
    for frame in one_of_each() {
        let bytes = encoded(&frame);
        assert_eq!(bytes.len(), frame.encoded_len());
        assert_eq!(decode_complete(&bytes), (frame, bytes.len()));
    }
}

#[test]
fn every_frame_type_round_trips_through_dtls() {
    for frame in one_of_each() {
        let mut out = [0u8; 64];
        let n = dtls_encode(&frame, &mut out).unwrap();
        assert_eq!(n, 1 + frame.payload_len());
        assert_eq!(dtls_decode(&out[..n]).unwrap(), frame);
    }
}

#[test]
fn dpd_request_is_answered_with_a_response_echoing_its_payload() {
    assert_eq!(
        Frame::DpdRequest(b"id").dpd_response(),
        Some(Frame::DpdResponse(b"id"))
    );
    assert_eq!(
        Frame::DpdRequest(&[]).dpd_response(),
        Some(Frame::DpdResponse(&[]))
    );
    assert_eq!(Frame::DpdResponse(b"id").dpd_response(), None);
    assert_eq!(Frame::Keepalive.dpd_response(), None);
}

#[test]
fn header_bytes_match_the_wire_format() {
    let bytes = encoded(&Frame::Data(PING));
    assert_eq!(
        &bytes[..8],
        &[0x53, 0x54, 0x46, 0x01, 0x00, 0x08, 0x00, 0x00]
    );
    assert_eq!(&bytes[8..], PING);
    assert_eq!(
        encoded(&Frame::Keepalive),
        [0x53, 0x54, 0x46, 0x01, 0, 0, 0x07, 0]
    );
    assert_eq!(
        encoded(&Frame::DpdRequest(&[])),
        [0x53, 0x54, 0x46, 0x01, 0, 0, 0x03, 0]
    );
}

#[test]
fn client_disconnect_carries_code_and_reason() {
    // What openconnect sends on SIGINT.
    let wire = b"STF\x01\x00\x12\x05\x00\xb0Aborted by caller";
    let (frame, consumed) = decode_complete(wire);
    assert_eq!(consumed, wire.len());
    let Frame::Disconnect(reason) = frame else {
        panic!("not a disconnect: {frame:?}")
    };
    assert_eq!(reason.code, REASON_CODE);
    assert_eq!(reason.text_lossy(), "Aborted by caller");
}

#[test]
fn server_terminate_is_type_9_with_reason() {
    let bytes = encoded(&Frame::Terminate(Reason::new("Administrator reset")));
    assert_eq!(bytes[6], 0x09);
    assert_eq!(bytes[8], 0xb0);
    assert_eq!(&bytes[9..], b"Administrator reset");
    assert_eq!(u16::from_be_bytes([bytes[4], bytes[5]]), 20);
}

#[test]
fn data_header_can_be_written_in_front_of_a_packet_already_in_place() {
    let mut buf = [0u8; 64];
    buf[HEADER_LEN..HEADER_LEN + PING.len()].copy_from_slice(PING);
    assert_eq!(
        encode_header(FrameType::Data, PING.len(), &mut buf),
        Ok(HEADER_LEN)
    );
    let (frame, consumed) = decode_complete(&buf[..HEADER_LEN + PING.len()]);
    assert_eq!(frame, Frame::Data(PING));
    assert_eq!(consumed, HEADER_LEN + PING.len());
}

#[test]
fn encode_header_refuses_lengths_the_peer_would_reject() {
    let mut buf = [0u8; 8];
    assert_eq!(
        encode_header(FrameType::Data, 0, &mut buf),
        Err(CstpError::EmptyData)
    );
    assert_eq!(
        encode_header(FrameType::Data, MAX_PAYLOAD_LEN + 1, &mut buf),
        Err(CstpError::PayloadTooLong {
            len: MAX_PAYLOAD_LEN + 1,
            max: MAX_PAYLOAD_LEN
        })
    );
    assert_eq!(
        encode_header(FrameType::Keepalive, 1, &mut buf),
        Err(CstpError::UnexpectedPayload {
            frame_type: FrameType::Keepalive,
            len: 1
        })
    );
    assert_eq!(
        encode_header(FrameType::Terminate, 0, &mut buf),
        Err(CstpError::MissingReasonCode {
            frame_type: FrameType::Terminate
        })
    );
    assert_eq!(
        encode_header(FrameType::Data, 20, &mut buf[..7]),
        Err(CstpError::BufferTooSmall {
            needed: 8,
            available: 7
        })
    );
}

#[test]
fn encode_reports_a_buffer_that_is_too_small() {
    let mut out = [0u8; 15];
    assert_eq!(
        encode(&Frame::Data(PING), &mut out),
        Err(CstpError::BufferTooSmall {
            needed: 16,
            available: 15
        })
    );
    let mut out = [0u8; 8];
    assert_eq!(
        dtls_encode(&Frame::Data(PING), &mut out),
        Err(CstpError::BufferTooSmall {
            needed: 9,
            available: 8
        })
    );
}

#[test]
fn payload_at_the_limit_is_accepted_and_one_byte_more_is_refused() {
    let mut payload = vec![0u8; MAX_PAYLOAD_LEN + 1];
    payload[0] = 0x45;
    let at_limit = Frame::Data(&payload[..MAX_PAYLOAD_LEN]);
    let bytes = encoded(&at_limit);
    assert_eq!(bytes.len(), MAX_FRAME_LEN);
    assert_eq!(decode_complete(&bytes).0, at_limit);

    let too_long = Frame::Data(&payload);
    let mut out = Vec::new();
    assert_eq!(
        encode_to_vec(&too_long, &mut out),
        Err(CstpError::PayloadTooLong {
            len: MAX_PAYLOAD_LEN + 1,
            max: MAX_PAYLOAD_LEN
        })
    );
    assert!(out.is_empty(), "nothing appended on error");

    // A header announcing more than the limit is refused before any payload arrives.
    let mut header = bytes[..8].to_vec();
    header[4..6].copy_from_slice(&u16::try_from(MAX_PAYLOAD_LEN + 1).unwrap().to_be_bytes());
    let error = decode(&header).unwrap_err();
    assert!(matches!(error, CstpError::PayloadTooLong { .. }));
    assert!(error.is_fatal());

    let mut record = vec![0x03u8; MAX_PAYLOAD_LEN + 2];
    assert!(matches!(
        dtls_decode(&record),
        Err(CstpError::PayloadTooLong { .. })
    ));
    assert!(matches!(
        dpd_response_in_place(&mut record),
        Err(CstpError::PayloadTooLong { .. })
    ));
    assert!(dtls_decode(&record[..MAX_PAYLOAD_LEN + 1]).is_ok());
}

#[test]
fn bad_magic_is_a_fatal_error() {
    let error = decode(b"STF\x02\x00\x00\x07\x00").unwrap_err();
    assert_eq!(error, CstpError::BadMagic { found: *b"STF\x02" });
    assert!(error.is_fatal());
    // An HTTP request where a frame was expected.
    assert!(matches!(
        decode(b"GET / HTTP/1.1\r\n"),
        Err(CstpError::BadMagic { .. })
    ));
}

#[test]
fn non_zero_byte_7_is_a_fatal_error() {
    let error = decode(b"STF\x01\x00\x00\x07\x01").unwrap_err();
    assert_eq!(error, CstpError::NonZeroReservedByte { found: 1 });
    assert!(error.is_fatal());
}

#[test]
fn unknown_type_is_refused_but_skippable() {
    let error = decode(b"STF\x01\x00\x00\x06\x00").unwrap_err();
    assert_eq!(error, CstpError::UnknownType { frame_type: 6 });
    assert!(!error.is_fatal());
    assert_eq!(
        dtls_decode(&[0x42]),
        Err(CstpError::UnknownType { frame_type: 0x42 })
    );
}

#[test]
fn compressed_frames_are_refused_because_compression_is_never_negotiated() {
    let error = decode(b"STF\x01\x00\x02\x08\x00\x12\x34").unwrap_err();
    assert_eq!(error, CstpError::CompressionNotNegotiated);
    assert!(!error.is_fatal());
    assert_eq!(
        dtls_decode(&[COMPRESSED_TYPE, 1, 2]),
        Err(CstpError::CompressionNotNegotiated)
    );
}

#[test]
fn data_must_hold_an_ip_packet() {
    assert_eq!(
        decode(b"STF\x01\x00\x00\x00\x00"),
        Err(CstpError::EmptyData)
    );
    assert_eq!(
        decode(b"STF\x01\x00\x01\x00\x00\x12"),
        Err(CstpError::NotAnIpPacket { version: 1 })
    );
    assert_eq!(dtls_decode(&[0x00]), Err(CstpError::EmptyData));
    let mut out = [0u8; 16];
    assert_eq!(
        encode(&Frame::Data(&[0x12]), &mut out),
        Err(CstpError::NotAnIpPacket { version: 1 })
    );
}

#[test]
fn keepalive_with_payload_is_refused() {
    assert_eq!(
        decode(b"STF\x01\x00\x01\x07\x00\x00"),
        Err(CstpError::UnexpectedPayload {
            frame_type: FrameType::Keepalive,
            len: 1
        })
    );
}

#[test]
fn disconnect_and_terminate_need_a_reason_code() {
    for (type_byte, frame_type) in [(5u8, FrameType::Disconnect), (9, FrameType::Terminate)] {
        let wire = [0x53, 0x54, 0x46, 0x01, 0, 0, type_byte, 0];
        assert_eq!(
            decode(&wire),
            Err(CstpError::MissingReasonCode { frame_type })
        );
    }
}

#[test]
fn partial_input_asks_for_the_missing_bytes() {
    let bytes = encoded(&Frame::Data(PING));
    assert_eq!(decode(&[]), Ok(Decoded::Incomplete { needed: 8 }));
    assert_eq!(decode(&bytes[..3]), Ok(Decoded::Incomplete { needed: 8 }));
    assert_eq!(decode(&bytes[..8]), Ok(Decoded::Incomplete { needed: 16 }));
    assert_eq!(decode(&bytes[..15]), Ok(Decoded::Incomplete { needed: 16 }));
    // A broken header is reported as soon as it is complete, not later.
    assert_eq!(decode(b"XTF"), Ok(Decoded::Incomplete { needed: 8 }));
}

#[test]
fn one_shot_decode_stops_after_the_first_frame() {
    let mut bytes = encoded(&Frame::Keepalive);
    bytes.extend(encoded(&Frame::Data(PING)));
    let (first, consumed) = decode_complete(&bytes);
    assert_eq!((first, consumed), (Frame::Keepalive, 8));
    assert_eq!(decode_complete(&bytes[consumed..]).0, Frame::Data(PING));
}

#[test]
fn skipping_a_refused_frame_uses_the_header_length() {
    let mut bytes = b"STF\x01\x00\x03\x08\x00abc".to_vec();
    bytes.extend(encoded(&Frame::Keepalive));
    assert_eq!(decode(&bytes), Err(CstpError::CompressionNotNegotiated));
    let header = Header::parse(&bytes).unwrap().unwrap();
    assert_eq!(header.frame_len(), 11);
    assert_eq!(decode_complete(&bytes[11..]).0, Frame::Keepalive);
}

#[test]
fn decoder_yields_frames_from_one_chunk_holding_several() {
    let mut stream = Vec::new();
    for frame in one_of_each() {
        stream.extend(encoded(&frame));
    }
    let mut decoder = FrameDecoder::new();
    assert_eq!(decoder.push(&stream), Ok(stream.len()));
    for expected in one_of_each() {
        assert_eq!(decoder.next_frame(), Ok(Some(expected)));
    }
    assert_eq!(decoder.next_frame(), Ok(None));
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn decoder_waits_for_the_rest_of_a_split_frame() {
    let bytes = encoded(&Frame::Data(PING));
    let mut decoder = FrameDecoder::new();
    for byte in &bytes[..bytes.len() - 1] {
        assert_eq!(decoder.push(std::slice::from_ref(byte)), Ok(1));
        assert_eq!(decoder.next_frame(), Ok(None));
    }
    assert_eq!(decoder.push(&bytes[bytes.len() - 1..]), Ok(1));
    assert_eq!(decoder.next_frame(), Ok(Some(Frame::Data(PING))));
}

#[test]
fn decoder_reads_straight_into_its_buffer() {
    let bytes = encoded(&Frame::DpdRequest(&[]));
    let mut decoder = FrameDecoder::new();
    let spare = decoder.read_buffer();
    spare[..bytes.len()].copy_from_slice(&bytes);
    assert_eq!(decoder.commit_read(bytes.len()), bytes.len());
    assert_eq!(decoder.next_frame(), Ok(Some(Frame::DpdRequest(&[]))));
}

#[test]
fn decoder_buffer_is_bounded_and_draining_makes_room() {
    let mut payload = vec![0u8; MAX_PAYLOAD_LEN];
    payload[0] = 0x60;
    let big = encoded(&Frame::Data(&payload));
    let mut decoder = FrameDecoder::with_capacity(0);
    assert_eq!(decoder.capacity(), MAX_FRAME_LEN);
    let stream = [big.as_slice(), big.as_slice()].concat();

    let taken = decoder.push(&stream).unwrap();
    assert_eq!(taken, MAX_FRAME_LEN);
    assert_eq!(decoder.push(&stream[taken..]), Ok(0), "buffer is full");
    assert_eq!(decoder.commit_read(1), 0);
    assert_eq!(decoder.next_frame(), Ok(Some(Frame::Data(&payload))));
    assert_eq!(decoder.push(&stream[taken..]), Ok(MAX_FRAME_LEN));
    assert_eq!(decoder.next_frame(), Ok(Some(Frame::Data(&payload))));
    assert_eq!(decoder.next_frame(), Ok(None));
}

#[test]
fn decoder_skips_a_refused_frame_and_continues() {
    let mut stream = b"STF\x01\x00\x02\x42\x00xy".to_vec();
    stream.extend(encoded(&Frame::Keepalive));
    let mut decoder = FrameDecoder::new();
    decoder.push(&stream).unwrap();
    assert_eq!(
        decoder.next_frame(),
        Err(CstpError::UnknownType { frame_type: 0x42 })
    );
    assert_eq!(decoder.next_frame(), Ok(Some(Frame::Keepalive)));
    assert!(decoder.poisoned().is_none());
}

#[test]
fn decoder_stays_poisoned_after_a_broken_header() {
    let mut stream = b"STF\x01\x00\x00\x07\x05".to_vec();
    stream.extend(encoded(&Frame::Keepalive));
    let mut decoder = FrameDecoder::new();
    decoder.push(&stream).unwrap();
    let error = CstpError::NonZeroReservedByte { found: 5 };
    assert_eq!(decoder.next_frame(), Err(error.clone()));
    assert_eq!(decoder.next_frame(), Err(error.clone()));
    assert_eq!(decoder.push(b"more"), Err(error.clone()));
    assert!(decoder.read_buffer().is_empty());
    assert_eq!(decoder.poisoned(), Some(&error));
}

#[test]
fn dtls_mtu_probe_is_echoed_at_the_same_length_as_dpd_response() {
    // openconnect's probe: 03, 4 bytes of id+size, zero padding up to the probe size.
    let mut probe = vec![0u8; 1354];
    probe[0] = 0x03;
    probe[1..5].copy_from_slice(&[0xde, 0xad, 0x05, 0x4a]);
    assert!(matches!(dtls_decode(&probe), Ok(Frame::DpdRequest(p)) if p.len() == 1353));

    let mut answer = vec![0u8; 2000];
    let n = dpd_response_for(&probe, &mut answer).unwrap();
    assert_eq!(n, probe.len());
    assert_eq!(answer[0], 0x04);
    assert_eq!(&answer[1..n], &probe[1..]);

    let mut in_place = probe.clone();
    dpd_response_in_place(&mut in_place).unwrap();
    assert_eq!(&in_place[..], &answer[..n]);
    assert!(matches!(dtls_decode(&in_place), Ok(Frame::DpdResponse(p)) if p == &probe[1..]));
}

#[test]
fn dtls_dpd_echo_refuses_what_is_not_a_request() {
    let mut out = [0u8; 8];
    assert_eq!(
        dpd_response_for(&[0x04, 1], &mut out),
        Err(CstpError::NotDpdRequest { found: 0x04 })
    );
    assert_eq!(
        dpd_response_for(&[], &mut out),
        Err(CstpError::EmptyDatagram)
    );
    assert_eq!(
        dpd_response_for(&[0x03; 9], &mut out),
        Err(CstpError::BufferTooSmall {
            needed: 9,
            available: 8
        })
    );
    assert_eq!(dtls_decode(&[]), Err(CstpError::EmptyDatagram));
    // The one-byte DTLS DPD the client sends when idle.
    assert_eq!(dtls_decode(&[0x03]), Ok(Frame::DpdRequest(&[])));
}

#[test]
fn frame_types_convert_to_and_from_their_wire_bytes() {
    for frame_type in FrameType::ALL {
        assert_eq!(FrameType::from_byte(frame_type.to_byte()), Ok(frame_type));
    }
    assert_eq!(FrameType::Disconnect.to_string(), "DISCONNECT");
    let known: Vec<u8> = FrameType::ALL.iter().map(|t| t.to_byte()).collect();
    for byte in 0..=u8::MAX {
        if !known.contains(&byte) {
            assert!(FrameType::from_byte(byte).is_err(), "{byte:#04x}");
        }
    }
}

// ---- property tests ----

/// An owned copy of a frame, for comparing across decoder calls.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedFrame {
    Data(Vec<u8>),
    DpdRequest(Vec<u8>),
    DpdResponse(Vec<u8>),
    Disconnect(u8, Vec<u8>),
    Keepalive,
    Terminate(u8, Vec<u8>),
}

impl OwnedFrame {
    fn of(frame: &Frame<'_>) -> OwnedFrame {
        match *frame {
            Frame::Data(p) => OwnedFrame::Data(p.to_vec()),
            Frame::DpdRequest(p) => OwnedFrame::DpdRequest(p.to_vec()),
            Frame::DpdResponse(p) => OwnedFrame::DpdResponse(p.to_vec()),
            Frame::Disconnect(r) => OwnedFrame::Disconnect(r.code, r.text.to_vec()),
            Frame::Keepalive => OwnedFrame::Keepalive,
            Frame::Terminate(r) => OwnedFrame::Terminate(r.code, r.text.to_vec()),
        }
    }

    fn as_frame(&self) -> Frame<'_> {
        match self {
            OwnedFrame::Data(p) => Frame::Data(p),
            OwnedFrame::DpdRequest(p) => Frame::DpdRequest(p),
            OwnedFrame::DpdResponse(p) => Frame::DpdResponse(p),
            OwnedFrame::Disconnect(code, text) => Frame::Disconnect(Reason { code: *code, text }),
            OwnedFrame::Keepalive => Frame::Keepalive,
            OwnedFrame::Terminate(code, text) => Frame::Terminate(Reason { code: *code, text }),
        }
    }
}

fn payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn ip_packet(max: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(4u8), Just(6u8)],
        any::<u8>(),
        payload(max - 1),
    )
        .prop_map(|(version, low, mut rest)| {
            rest.insert(0, (version << 4) | (low & 0x0f));
            rest
        })
}

fn owned_frame(max: usize) -> impl Strategy<Value = OwnedFrame> {
    prop_oneof![
        ip_packet(max).prop_map(OwnedFrame::Data),
        payload(max).prop_map(OwnedFrame::DpdRequest),
        payload(max).prop_map(OwnedFrame::DpdResponse),
        (any::<u8>(), payload(max - 1)).prop_map(|(c, t)| OwnedFrame::Disconnect(c, t)),
        Just(OwnedFrame::Keepalive),
        (any::<u8>(), payload(max - 1)).prop_map(|(c, t)| OwnedFrame::Terminate(c, t)),
    ]
}

/// Feeds `stream` to a decoder in chunks ending at `splits`, collecting what it yields.
fn decode_in_chunks(stream: &[u8], splits: &[usize]) -> Vec<Result<OwnedFrame, CstpError>> {
    let mut decoder = FrameDecoder::with_capacity(0);
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = splits.iter().map(|s| s % (stream.len() + 1)).collect();
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut from = 0;
    for cut in cuts {
        let mut chunk = &stream[from..cut.max(from)];
        from = cut.max(from);
        while !chunk.is_empty() {
            let Ok(taken) = decoder.push(chunk) else {
                return out;
            };
            chunk = &chunk[taken..];
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => out.push(Ok(OwnedFrame::of(&frame))),
                    Ok(None) => break,
                    Err(e) if e.is_fatal() => {
                        out.push(Err(e));
                        return out;
                    }
                    Err(e) => out.push(Err(e)),
                }
            }
        }
    }
    out
}

/// Decodes `stream` with repeated one-shot `decode` calls.
fn decode_one_shot(stream: &[u8]) -> Vec<Result<OwnedFrame, CstpError>> {
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        match decode(rest) {
            Ok(Decoded::Complete { frame, consumed }) => {
                out.push(Ok(OwnedFrame::of(&frame)));
                rest = &rest[consumed..];
            }
            Ok(Decoded::Incomplete { .. }) => return out,
            Err(e) if e.is_fatal() => {
                out.push(Err(e));
                return out;
            }
            Err(e) => {
                out.push(Err(e));
                let Ok(Some(header)) = Header::parse(rest) else {
                    panic!("a non-fatal error comes with a valid header")
                };
                rest = &rest[header.frame_len()..];
            }
        }
    }
}

proptest! {
    #[test]
    fn any_frame_round_trips_up_to_the_payload_limit(frame in owned_frame(MAX_PAYLOAD_LEN)) {
        let frame = frame.as_frame();
        let mut out = vec![0u8; MAX_FRAME_LEN];
        let n = encode(&frame, &mut out).unwrap();
        prop_assert_eq!(n, frame.encoded_len());
        prop_assert_eq!(decode(&out[..n]), Ok(Decoded::Complete { frame, consumed: n }));

        let n = dtls_encode(&frame, &mut out).unwrap();
        prop_assert_eq!(dtls_decode(&out[..n]), Ok(frame));
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(mut bytes in payload(64)) {
        if let Ok(Decoded::Complete { consumed, .. }) = decode(&bytes) {
            prop_assert!(consumed <= bytes.len());
        }
        let _ = dtls_decode(&bytes);
        if dpd_response_in_place(&mut bytes).is_ok() {
            prop_assert!(matches!(dtls_decode(&bytes), Ok(Frame::DpdResponse(_))));
        }
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        bytes in payload(4096),
        splits in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let _ = decode_in_chunks(&bytes, &splits);
    }

    #[test]
    fn decoder_never_panics_on_streams_with_valid_magic(
        chunks in prop::collection::vec((0u16..64, any::<u8>(), any::<u8>(), payload(64)), 0..16),
        splits in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        // Mostly well-formed headers with random type, reserved byte and length mismatch.
        let mut stream = Vec::new();
        for (len, frame_type, reserved, body) in chunks {
            stream.extend_from_slice(&MAGIC);
            stream.extend_from_slice(&len.to_be_bytes());
            stream.extend_from_slice(&[frame_type, reserved % 4 / 3]);
            stream.extend_from_slice(&body);
        }
        prop_assert_eq!(decode_in_chunks(&stream, &splits), decode_one_shot(&stream));
    }

    #[test]
    fn chunked_feeding_yields_the_same_frames_as_one_shot(
        frames in prop::collection::vec(owned_frame(3000), 0..12),
        splits in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut stream = Vec::new();
        for frame in &frames {
            encode_to_vec(&frame.as_frame(), &mut stream).unwrap();
        }
        let expected: Vec<_> = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(&decode_one_shot(&stream), &expected);
        prop_assert_eq!(&decode_in_chunks(&stream, &splits), &expected);
    }
}
