//! [`FrameDecoder`]: CSTP frames out of a TLS byte stream that may split or merge records.

use super::{CstpError, Decoded, Frame, Header, MAX_FRAME_LEN, decode};

/// Buffer size of [`FrameDecoder::new`]: room for two maximum-size frames, so a TLS read of
/// a whole record always fits after the previous partial one.
pub const DEFAULT_DECODER_CAPACITY: usize = 2 * MAX_FRAME_LEN;

/// Turns arbitrary chunks of the TLS plaintext stream into frames.
///
/// The buffer is allocated once, in the constructor, and never grows: at most
/// `capacity` bytes wait for decoding. Frames borrow the buffer, so the caller handles
/// (or copies) each frame before feeding more bytes.
///
/// Two ways to feed it:
/// * [`push`](Self::push) copies from a chunk and says how much it took;
/// * [`read_buffer`](Self::read_buffer) + [`commit_read`](Self::commit_read) let the TLS
///   layer read straight into the buffer (no copy).
///
/// Then call [`next_frame`](Self::next_frame) until it returns `Ok(None)`. Because the
/// buffer holds at least one maximum-size frame, a full buffer always contains a complete
/// frame (or a broken header), so draining always makes room.
///
/// A [fatal](CstpError::is_fatal) error poisons the decoder: every later call returns it
/// again. A non-fatal error skips just that frame.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Box<[u8]>,
    /// First byte not yet decoded.
    start: usize,
    /// End of the bytes received so far.
    end: usize,
    poisoned: Option<CstpError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder with [`DEFAULT_DECODER_CAPACITY`] bytes of buffer.
    pub fn new() -> FrameDecoder {
        FrameDecoder::with_capacity(DEFAULT_DECODER_CAPACITY)
    }

    /// A decoder with `capacity` bytes of buffer, raised to [`MAX_FRAME_LEN`] if smaller.
    pub fn with_capacity(capacity: usize) -> FrameDecoder {
        FrameDecoder {
            buf: vec![0; capacity.max(MAX_FRAME_LEN)].into_boxed_slice(),
            start: 0,
            end: 0,
            poisoned: None,
        }
    }

    /// Size of the internal buffer.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The fatal error this decoder stopped at, if any.
    pub fn poisoned(&self) -> Option<&CstpError> {
        self.poisoned.as_ref()
    }

    /// Copies as much of `bytes` as fits; returns how many bytes were taken (0 when the
    /// buffer is full: call [`next_frame`](Self::next_frame) first). Fails only when
    /// the decoder is poisoned.
    pub fn push(&mut self, bytes: &[u8]) -> Result<usize, CstpError> {
        if let Some(error) = &self.poisoned {
            return Err(error.clone());
        }
        let spare = self.read_buffer();
        let n = spare.len().min(bytes.len());
        if let (Some(dst), Some(src)) = (spare.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(self.commit_read(n))
    }

    /// The free part of the buffer, for a TLS read to fill; then call
    /// [`commit_read`](Self::commit_read) with the number of bytes read. Empty when the
    /// buffer is full or the decoder is poisoned.
    pub fn read_buffer(&mut self) -> &mut [u8] {
        if self.poisoned.is_some() {
            return &mut [];
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.get_mut(self.end..).unwrap_or(&mut [])
    }

    /// Marks `n` bytes of [`read_buffer`](Self::read_buffer) as received; returns the
    /// number actually taken (`n`, or less if `n` exceeds the free space).
    pub fn commit_read(&mut self, n: usize) -> usize {
        let n = n.min(self.buf.len() - self.end);
        self.end += n;
        n
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CstpError> {
        if let Some(error) = &self.poisoned {
            return Err(error.clone());
        }
        let start = self.start;
        let pending = self.buf.get(start..self.end).unwrap_or(&[]);
        let frame_len = match Header::parse(pending) {
            Ok(Some(header)) if header.frame_len() <= pending.len() => header.frame_len(),
            Ok(_) => return Ok(None),
            Err(error) => {
                self.poisoned = Some(error.clone());
                return Err(error);
            }
        };
        self.start = start + frame_len;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let bytes = self.buf.get(start..start + frame_len).unwrap_or(&[]);
        match decode(bytes)? {
            Decoded::Complete { frame, .. } => Ok(Some(frame)),
            // Not reachable: the header said the frame is complete.
            Decoded::Incomplete { .. } => Ok(None),
        }
    }
}
