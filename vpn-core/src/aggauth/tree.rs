//! A bounded element tree read from a client message with quick-xml.
//!
//! The tree is built with an explicit stack (no recursion), refuses DTDs and any entity
//! other than the five predefined ones and character references, and enforces every
//! limit of [`super::limits`] while reading.

use std::ops::Range;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::AggAuthError;
use super::limits::{
    MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTES_PER_ELEMENT, MAX_BODY_BYTES, MAX_DEPTH, MAX_ELEMENTS,
    MAX_TEXT_BYTES,
};

/// One element: name, attributes, concatenated text and children, and where it sits in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) text: String,
    pub(crate) children: Vec<Element>,
    /// Byte range of the whole element (start tag to end tag) in the body.
    pub(crate) span: Range<usize>,
}

impl Element {
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    pub(crate) fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |child| child.name == name)
    }

    /// Text content with leading and trailing XML whitespace removed.
    pub(crate) fn trimmed_text(&self) -> &str {
        self.text
            .trim_matches(|c: char| matches!(c, ' ' | '\t' | '\r' | '\n'))
    }
}

/// Reads `body` into a tree, enforcing every limit.
pub(crate) fn read_tree(body: &[u8]) -> Result<Element, AggAuthError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(AggAuthError::BodyTooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    std::str::from_utf8(body).map_err(|_| AggAuthError::NotUtf8)?;

    let mut reader = Reader::from_reader(body);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;

    loop {
        let start = position(&reader);
        let event = reader
            .read_event()
            .map_err(|err| AggAuthError::Malformed(err.to_string()))?;
        let end = position(&reader);
        match event {
            Event::Start(tag) => {
                let element = open_element(&tag, start..end, &stack, &root, &mut elements)?;
                stack.push(element);
            }
            Event::Empty(tag) => {
                let element = open_element(&tag, start..end, &stack, &root, &mut elements)?;
                attach(element, &mut stack, &mut root);
            }
            Event::End(_) => {
                // quick-xml checks that end names match their start tags.
                let Some(mut element) = stack.pop() else {
                    return Err(AggAuthError::Malformed("unexpected end tag".into()));
                };
                element.span.end = end;
                attach(element, &mut stack, &mut root);
            }
            Event::Text(text) => append_text(&mut stack, &text.xml10_content())?,
            Event::CData(data) => append_text(&mut stack, &data.xml10_content())?,
            Event::GeneralRef(reference) => append_text(&mut stack, &resolve(&reference)?)?,
            Event::DocType(_) => return Err(AggAuthError::DtdRefused),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(AggAuthError::Malformed(
            "document ends inside an element".into(),
        ));
    }
    root.ok_or(AggAuthError::Malformed("no root element".into()))
}

fn position(reader: &Reader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
}

fn open_element(
    tag: &BytesStart<'_>,
    span: Range<usize>,
    stack: &[Element],
    root: &Option<Element>,
    elements: &mut usize,
) -> Result<Element, AggAuthError> {
    if root.is_some() {
        return Err(AggAuthError::Malformed(
            "content after the root element".into(),
        ));
    }
    if stack.len() >= MAX_DEPTH {
        return Err(AggAuthError::TooDeep { limit: MAX_DEPTH });
    }
    *elements += 1;
    if *elements > MAX_ELEMENTS {
        return Err(AggAuthError::TooManyElements {
            limit: MAX_ELEMENTS,
        });
    }
    let name = tag.name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attribute in tag.attributes() {
        let attribute = attribute.map_err(|err| AggAuthError::Malformed(err.to_string()))?;
        if attributes.len() >= MAX_ATTRIBUTES_PER_ELEMENT {
            return Err(AggAuthError::TooManyAttributes {
                element: name,
                limit: MAX_ATTRIBUTES_PER_ELEMENT,
            });
        }
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| AggAuthError::Malformed(err.to_string()))?;
        if value.len() > MAX_ATTRIBUTE_BYTES || attribute.key.as_ref().len() > MAX_ATTRIBUTE_BYTES {
            return Err(AggAuthError::AttributeTooLong {
                element: name,
                limit: MAX_ATTRIBUTE_BYTES,
            });
        }
        attributes.push((attribute.key.as_ref().to_owned(), value.into_owned()));
    }
    Ok(Element {
        name,
        attributes,
        text: String::new(),
        children: Vec::new(),
        span,
    })
}

fn attach(element: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn append_text(stack: &mut [Element], text: &str) -> Result<(), AggAuthError> {
    match stack.last_mut() {
        Some(element) => {
            if element.text.len().saturating_add(text.len()) > MAX_TEXT_BYTES {
                return Err(AggAuthError::TextTooLong {
                    element: element.name.clone(),
                    limit: MAX_TEXT_BYTES,
                });
            }
            element.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(AggAuthError::Malformed(
            "text outside the root element".into(),
        )),
    }
}

fn resolve(reference: &BytesRef<'_>) -> Result<String, AggAuthError> {
    if let Some(ch) = reference
        .resolve_char_ref()
        .map_err(|err| AggAuthError::Malformed(err.to_string()))?
    {
        return Ok(ch.to_string());
    }
    let name: &str = reference;
    let text = match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        other => {
            return Err(AggAuthError::UnknownEntity(
                other.chars().take(32).collect(),
            ));
        }
    };
    Ok(text.to_owned())
}
