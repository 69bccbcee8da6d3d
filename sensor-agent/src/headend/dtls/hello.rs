//! The one thing the headend reads from a datagram before any DTLS state exists: the
//! session id of a DTLS ClientHello, which openconnect sets to the session's App-ID
//! (protocol.md §5.2).
//!
//! Layout: a 13-byte record header (content type 22, version, epoch 0, sequence number,
//! length), a 12-byte handshake header (type 1, length, message sequence, fragment
//! offset 0, fragment length), then `client_version` (2), `random` (32),
//! `session_id` length (1) and the session id: its length byte is at offset 59.

/// Largest datagram accepted from a client: a DTLS record of 2^14 bytes of plaintext
/// plus the most expansion DTLS 1.2 allows (2048) and the record header (13).
pub const MAX_DATAGRAM_LEN: usize = 16_384 + 2_048 + RECORD_HEADER_LEN;
/// Longest session id (RFC 6347 §4.2.1 / RFC 5246 §7.4.1.2).
pub const MAX_SESSION_ID_LEN: usize = 32;

const RECORD_HEADER_LEN: usize = 13;
const HANDSHAKE_HEADER_LEN: usize = 12;
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// `client_version` and `random` before the session id.
const SESSION_ID_OFFSET: usize = RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN + 2 + 32;

/// Why a datagram is not a ClientHello the headend can bind to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("datagram of {len} bytes is longer than the {max} a DTLS record can be")]
    TooLong { len: usize, max: usize },
    #[error("datagram of {len} bytes is too short for a ClientHello with a session id")]
    TooShort { len: usize },
    #[error("content type {found} is not a handshake record (22)")]
    NotHandshake { found: u8 },
    #[error("record epoch {epoch} is not 0: not the start of a handshake")]
    NotEpochZero { epoch: u16 },
    #[error("handshake type {found} is not a ClientHello (1)")]
    NotClientHello { found: u8 },
    #[error("the ClientHello is a fragment at offset {offset}, not its start")]
    Fragment { offset: u32 },
    #[error("session id of {len} bytes: empty or longer than 32 bytes")]
    BadSessionIdLength { len: usize },
    #[error("the session id runs past the end of the record")]
    Truncated,
}

/// The session id of the ClientHello in `datagram`, if it is one with a non-empty
/// session id.
pub fn client_hello_session_id(datagram: &[u8]) -> Result<&[u8], HelloError> {
    if datagram.len() > MAX_DATAGRAM_LEN {
        return Err(HelloError::TooLong {
            len: datagram.len(),
            max: MAX_DATAGRAM_LEN,
        });
    }
    let Some(&id_len) = datagram.get(SESSION_ID_OFFSET) else {
        return Err(HelloError::TooShort {
            len: datagram.len(),
        });
    };
    let byte = |at: usize| datagram.get(at).copied().unwrap_or(0);
    if byte(0) != CONTENT_TYPE_HANDSHAKE {
        return Err(HelloError::NotHandshake { found: byte(0) });
    }
    let epoch = u16::from_be_bytes([byte(3), byte(4)]);
    if epoch != 0 {
        return Err(HelloError::NotEpochZero { epoch });
    }
    if byte(RECORD_HEADER_LEN) != HANDSHAKE_CLIENT_HELLO {
        return Err(HelloError::NotClientHello {
            found: byte(RECORD_HEADER_LEN),
        });
    }
    let offset = u32::from_be_bytes([0, byte(19), byte(20), byte(21)]);
    if offset != 0 {
        return Err(HelloError::Fragment { offset });
    }
    let id_len = usize::from(id_len);
    if id_len == 0 || id_len > MAX_SESSION_ID_LEN {
        return Err(HelloError::BadSessionIdLength { len: id_len });
    }
    let record_len = usize::from(u16::from_be_bytes([byte(11), byte(12)]));
    let record_end = RECORD_HEADER_LEN.saturating_add(record_len);
    let id_start = SESSION_ID_OFFSET + 1;
    let id_end = id_start + id_len;
    if id_end > record_end {
        return Err(HelloError::Truncated);
    }
    datagram.get(id_start..id_end).ok_or(HelloError::Truncated)
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A ClientHello shaped like openconnect 9.01's: DTLS 1.0 record version, DTLS 1.2
    /// client version, `session_id` = `id`, then cookie, suites and the rest.
    pub(crate) fn client_hello(id: &[u8]) -> Vec<u8> {
        let mut body = vec![0xfe, 0xfd];
        body.extend_from_slice(&[0x5a; 32]);
        body.push(id.len() as u8);
        body.extend_from_slice(id);
        body.push(0); // empty cookie
        body.extend_from_slice(&[0, 2, 0x00, 0xa9]); // PSK-AES256-GCM-SHA384
        body.extend_from_slice(&[1, 0]); // null compression
        let len = body.len() as u32;
        let mut handshake = vec![HANDSHAKE_CLIENT_HELLO];
        handshake.extend_from_slice(&len.to_be_bytes()[1..]);
        handshake.extend_from_slice(&[0, 0]); // message sequence
        handshake.extend_from_slice(&[0, 0, 0]); // fragment offset
        handshake.extend_from_slice(&len.to_be_bytes()[1..]);
        handshake.extend_from_slice(&body);
        let mut record = vec![CONTENT_TYPE_HANDSHAKE, 0xfe, 0xff, 0, 0];
        record.extend_from_slice(&[0; 6]);
        record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
        record.extend_from_slice(&handshake);
        record
    }

    #[test]
    fn the_session_id_of_an_openconnect_client_hello_is_found_at_offset_59() {
        let id = [0xab; 32];
        let hello = client_hello(&id);
        assert_eq!(hello[59], 32);
        assert_eq!(client_hello_session_id(&hello), Ok(&id[..]));
    }

    #[test]
    fn application_data_and_later_epochs_are_not_client_hellos() {
        let mut hello = client_hello(&[1; 32]);
        hello[0] = 23;
        assert_eq!(
            client_hello_session_id(&hello),
            Err(HelloError::NotHandshake { found: 23 })
        );
        let mut hello = client_hello(&[1; 32]);
        hello[4] = 1;
        assert_eq!(
            client_hello_session_id(&hello),
            Err(HelloError::NotEpochZero { epoch: 1 })
        );
        let mut hello = client_hello(&[1; 32]);
        hello[13] = 2;
        assert_eq!(
            client_hello_session_id(&hello),
            Err(HelloError::NotClientHello { found: 2 })
        );
    }

    #[test]
    fn a_hello_without_session_id_or_with_an_overlong_one_is_refused() {
        assert_eq!(
            client_hello_session_id(&client_hello(&[])),
            Err(HelloError::BadSessionIdLength { len: 0 })
        );
        let mut hello = client_hello(&[7; 32]);
        hello[59] = 33;
        assert_eq!(
            client_hello_session_id(&hello),
            Err(HelloError::BadSessionIdLength { len: 33 })
        );
    }

    #[test]
    fn a_session_id_cut_off_by_the_datagram_or_the_record_length_is_refused() {
        let hello = client_hello(&[7; 32]);
        assert_eq!(
            client_hello_session_id(&hello[..70]),
            Err(HelloError::Truncated)
        );
        let mut short_record = hello.clone();
        short_record[11] = 0;
        short_record[12] = 50;
        assert_eq!(
            client_hello_session_id(&short_record),
            Err(HelloError::Truncated)
        );
        assert_eq!(
            client_hello_session_id(&hello[..59]),
            Err(HelloError::TooShort { len: 59 })
        );
    }

    #[test]
    fn a_fragment_that_is_not_the_start_of_the_hello_is_refused() {
        let mut hello = client_hello(&[7; 32]);
        hello[21] = 9;
        assert_eq!(
            client_hello_session_id(&hello),
            Err(HelloError::Fragment { offset: 9 })
        );
    }

    #[test]
    fn an_oversized_datagram_is_refused_before_it_is_read() {
        let mut hello = client_hello(&[7; 32]);
        hello.resize(MAX_DATAGRAM_LEN + 1, 0);
        assert!(matches!(
            client_hello_session_id(&hello),
            Err(HelloError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_datagram_is_answered_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = client_hello_session_id(&bytes);
        }

        #[test]
        fn any_id_of_one_to_32_bytes_is_read_back(id in proptest::collection::vec(any::<u8>(), 1..=32)) {
            let hello = client_hello(&id);
            prop_assert_eq!(client_hello_session_id(&hello), Ok(&id[..]));
        }
    }
}
