//! Hard limits applied to every client message before and while it is parsed.
//!
//! A PKCS#7 bag of ten 4096-bit RSA certificates is about 20 KiB of DER, 28 KiB of
//! base64 with line breaks: it fits comfortably under each limit below.

/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Deepest accepted element nesting (`<config-auth>` is depth 1).
pub const MAX_DEPTH: usize = 16;
/// Most elements accepted in one message.
pub const MAX_ELEMENTS: usize = 1024;
/// Longest accepted text content of one element, in bytes (after entity resolution).
pub const MAX_TEXT_BYTES: usize = 128 * 1024;
/// Longest accepted attribute value, in bytes.
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;
/// Most attributes accepted on one element.
pub const MAX_ATTRIBUTES_PER_ELEMENT: usize = 16;
