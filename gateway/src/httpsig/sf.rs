//! The subset of RFC 8941 structured fields that HTTP message signatures
//! and Content-Digest need: dictionaries whose members are items or inner
//! lists, parameters, and the bare item types integer, string, token,
//! byte sequence and boolean. Decimals, dates and display strings are
//! refused as unsupported.
//!
//! The parser is a single forward pass over the bytes with hard limits on
//! the number of members, inner-list items and parameters, so its cost is
//! linear in the input and bounded by the caller's size cap. It never
//! panics: every byte access goes through `peek`.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// Base64 decoding that tolerates missing `=` padding, as RFC 8941 §4.2.7
/// asks of parsers; encoding always pads.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Largest integer RFC 8941 allows (15 digits).
const INTEGER_MAX: i64 = 999_999_999_999_999;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BareItem {
    Integer(i64),
    String(String),
    Token(String),
    Bytes(Vec<u8>),
    Boolean(bool),
}

/// Parameters in order of first appearance; a repeated key overwrites the
/// earlier value in place (RFC 8941 §4.2.3.2).
pub(crate) type Params = Vec<(String, BareItem)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) bare: BareItem,
    pub(crate) params: Params,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Member {
    Item(Item),
    InnerList(Vec<Item>, Params),
}

/// Members in order of first appearance; a repeated key overwrites the
/// earlier value in place (RFC 8941 §4.2.2).
pub(crate) type Dictionary = Vec<(String, Member)>;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) members: usize,
    pub(crate) inner_items: usize,
    pub(crate) params: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SfError {
    Syntax(&'static str),
    TooManyMembers,
    TooManyItems,
    TooManyParams,
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    limits: Limits,
}

fn is_lcalpha(b: u8) -> bool {
    b.is_ascii_lowercase()
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(crate) fn is_key(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(&c) if is_lcalpha(c) || c == b'*' => {}
        _ => return false,
    }
    b.iter()
        .all(|&c| is_lcalpha(c) || c.is_ascii_digit() || b"_-.*".contains(&c))
}

/// True if `s` can be carried in an sf-string (printable ASCII only).
pub(crate) fn is_sf_string(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ') | Some(b'\t')) {
            self.pos += 1;
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn key(&mut self) -> Result<String, SfError> {
        let start = self.pos;
        match self.peek() {
            Some(c) if is_lcalpha(c) || c == b'*' => self.pos += 1,
            _ => return Err(SfError::Syntax("expected a key")),
        }
        while let Some(c) = self.peek() {
            if is_lcalpha(c) || c.is_ascii_digit() || b"_-.*".contains(&c) {
                self.pos += 1;
            } else {
                break;
            }
        }
        let bytes = self.input.get(start..self.pos).unwrap_or_default();
        // Only ASCII bytes were accepted above.
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn params(&mut self) -> Result<Params, SfError> {
        let mut params: Params = Vec::new();
        while self.eat(b';') {
            self.skip_sp();
            let key = self.key()?;
            let value = if self.eat(b'=') {
                self.bare_item()?
            } else {
                BareItem::Boolean(true)
            };
            if let Some(slot) = params.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else {
                if params.len() >= self.limits.params {
                    return Err(SfError::TooManyParams);
                }
                params.push((key, value));
            }
        }
        Ok(params)
    }

    fn item(&mut self) -> Result<Item, SfError> {
        let bare = self.bare_item()?;
        let params = self.params()?;
        Ok(Item { bare, params })
    }

    fn bare_item(&mut self) -> Result<BareItem, SfError> {
        match self.peek() {
            Some(b'-') | Some(b'0'..=b'9') => self.integer(),
            Some(b'"') => self.string(),
            Some(b':') => self.bytes(),
            Some(b'?') => self.boolean(),
            Some(c) if c.is_ascii_alphabetic() || c == b'*' => self.token(),
            Some(b'@') => Err(SfError::Syntax("dates are not supported")),
            Some(b'%') => Err(SfError::Syntax("display strings are not supported")),
            _ => Err(SfError::Syntax("expected an item")),
        }
    }

    fn integer(&mut self) -> Result<BareItem, SfError> {
        let negative = self.eat(b'-');
        let mut value: i64 = 0;
        let mut digits = 0usize;
        while let Some(c) = self.peek() {
            if !c.is_ascii_digit() {
                break;
            }
            digits += 1;
            if digits > 15 {
                return Err(SfError::Syntax("integer too long"));
            }
            value = value * 10 + i64::from(c - b'0');
            self.pos += 1;
        }
        if digits == 0 {
            return Err(SfError::Syntax("expected a digit"));
        }
        if self.peek() == Some(b'.') {
            return Err(SfError::Syntax("decimals are not supported"));
        }
        debug_assert!(value <= INTEGER_MAX);
        Ok(BareItem::Integer(if negative { -value } else { value }))
    }

    fn string(&mut self) -> Result<BareItem, SfError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(SfError::Syntax("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(BareItem::String(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(char::from(c));
                            self.pos += 1;
                        }
                        _ => return Err(SfError::Syntax("bad escape in string")),
                    }
                }
                Some(c) if (0x20..=0x7e).contains(&c) => {
                    out.push(char::from(c));
                    self.pos += 1;
                }
                Some(_) => return Err(SfError::Syntax("invalid character in string")),
            }
        }
    }

    fn token(&mut self) -> Result<BareItem, SfError> {
        let start = self.pos;
        self.pos += 1; // first character already checked
        while let Some(c) = self.peek() {
            if is_tchar(c) || c == b':' || c == b'/' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let bytes = self.input.get(start..self.pos).unwrap_or_default();
        Ok(BareItem::Token(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn bytes(&mut self) -> Result<BareItem, SfError> {
        self.pos += 1; // opening colon
        let start = self.pos;
        loop {
            match self.peek() {
                None => return Err(SfError::Syntax("unterminated byte sequence")),
                Some(b':') => break,
                Some(c) if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=' => {
                    self.pos += 1;
                }
                Some(_) => return Err(SfError::Syntax("invalid character in byte sequence")),
            }
        }
        let encoded = self.input.get(start..self.pos).unwrap_or_default();
        self.pos += 1; // closing colon
        LENIENT_B64
            .decode(encoded)
            .map(BareItem::Bytes)
            .map_err(|_| SfError::Syntax("invalid base64 in byte sequence"))
    }

    fn boolean(&mut self) -> Result<BareItem, SfError> {
        self.pos += 1; // '?'
        if self.eat(b'1') {
            Ok(BareItem::Boolean(true))
        } else if self.eat(b'0') {
            Ok(BareItem::Boolean(false))
        } else {
            Err(SfError::Syntax("invalid boolean"))
        }
    }

    fn inner_list(&mut self) -> Result<Member, SfError> {
        self.pos += 1; // '('
        let mut items = Vec::new();
        loop {
            self.skip_sp();
            if self.eat(b')') {
                let params = self.params()?;
                return Ok(Member::InnerList(items, params));
            }
            if items.len() >= self.limits.inner_items {
                return Err(SfError::TooManyItems);
            }
            items.push(self.item()?);
            match self.peek() {
                Some(b' ') | Some(b')') => {}
                _ => return Err(SfError::Syntax("expected space or ')' in inner list")),
            }
        }
    }

    fn member(&mut self) -> Result<Member, SfError> {
        if self.peek() == Some(b'(') {
            self.inner_list()
        } else {
            self.item().map(Member::Item)
        }
    }

    fn dictionary(&mut self) -> Result<Dictionary, SfError> {
        let mut dict: Dictionary = Vec::new();
        self.skip_ows();
        if self.at_end() {
            return Ok(dict);
        }
        loop {
            let key = self.key()?;
            let member = if self.eat(b'=') {
                self.member()?
            } else {
                let params = self.params()?;
                Member::Item(Item {
                    bare: BareItem::Boolean(true),
                    params,
                })
            };
            if let Some(slot) = dict.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = member;
            } else {
                if dict.len() >= self.limits.members {
                    return Err(SfError::TooManyMembers);
                }
                dict.push((key, member));
            }
            self.skip_ows();
            if self.at_end() {
                return Ok(dict);
            }
            if !self.eat(b',') {
                return Err(SfError::Syntax("expected ',' between members"));
            }
            self.skip_ows();
            if self.at_end() {
                return Err(SfError::Syntax("trailing ','"));
            }
        }
    }
}

/// Parses a dictionary field value (RFC 8941 §4.2.2).
pub(crate) fn parse_dictionary(input: &str, limits: Limits) -> Result<Dictionary, SfError> {
    let mut p = Parser {
        input: input.as_bytes(),
        pos: 0,
        limits,
    };
    p.dictionary()
}

/// Serializes an sf-string. The caller guarantees `is_sf_string(s)`;
/// other characters are dropped rather than emitted.
pub(crate) fn serialize_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {}
        }
    }
    out.push('"');
}

pub(crate) fn serialize_bare(item: &BareItem, out: &mut String) {
    match item {
        BareItem::Integer(i) => out.push_str(&i.to_string()),
        BareItem::String(s) => serialize_string(s, out),
        BareItem::Token(t) => out.push_str(t),
        BareItem::Bytes(b) => {
            out.push(':');
            out.push_str(&STANDARD.encode(b));
            out.push(':');
        }
        BareItem::Boolean(true) => out.push_str("?1"),
        BareItem::Boolean(false) => out.push_str("?0"),
    }
}

pub(crate) fn serialize_params(params: &[(String, BareItem)], out: &mut String) {
    for (key, value) in params {
        out.push(';');
        out.push_str(key);
        if *value != BareItem::Boolean(true) {
            out.push('=');
            serialize_bare(value, out);
        }
    }
}

pub(crate) fn serialize_inner_list(
    items: &[Item],
    params: &[(String, BareItem)],
    out: &mut String,
) {
    out.push('(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        serialize_bare(&item.bare, out);
        serialize_params(&item.params, out);
    }
    out.push(')');
    serialize_params(params, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        members: 8,
        inner_items: 8,
        params: 8,
    };

    fn round_trip_inner(input: &str) -> String {
        let dict = parse_dictionary(input, LIMITS).unwrap();
        let (key, member) = &dict[0];
        let mut out = format!("{key}=");
        match member {
            Member::InnerList(items, params) => serialize_inner_list(items, params, &mut out),
            Member::Item(item) => {
                serialize_bare(&item.bare, &mut out);
                serialize_params(&item.params, &mut out);
            }
        }
        out
    }

    #[test]
    fn parses_and_reserializes_canonically() {
        assert_eq!(
            round_trip_inner(r#"sig1=(  "a"   "b" );created=1;keyid="k\"\\""#),
            r#"sig1=("a" "b");created=1;keyid="k\"\\""#
        );
        assert_eq!(round_trip_inner("a=:AQID:;x;y=?0"), "a=:AQID:;x;y=?0");
        assert_eq!(round_trip_inner("a=:AQI:"), "a=:AQI=:");
        assert_eq!(round_trip_inner("a=-12;t=tok/en:x"), "a=-12;t=tok/en:x");
    }

    #[test]
    fn dictionary_semantics() {
        let d = parse_dictionary("a=1, b, a=2", LIMITS).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].0, "a");
        assert_eq!(
            d[0].1,
            Member::Item(Item {
                bare: BareItem::Integer(2),
                params: vec![]
            })
        );
        assert!(parse_dictionary("", LIMITS).unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "A=1",
            "a=1,",
            "a=1 b=2",
            "a=1.5",
            "a=1234567890123456",
            "a=\"unterminated",
            "a=\"bad\\x\"",
            "a=:not base64!:",
            "a=(\"x\"\"y\")",
            "a=(\"x\"",
            "a=?2",
            "a=@1",
            "a=%\"x\"",
            "a=-",
            "a=\"tab\there\"",
        ] {
            assert!(parse_dictionary(bad, LIMITS).is_err(), "{bad}");
        }
    }

    #[test]
    fn enforces_limits() {
        let tight = Limits {
            members: 2,
            inner_items: 2,
            params: 2,
        };
        assert_eq!(
            parse_dictionary("a, b, c", tight),
            Err(SfError::TooManyMembers)
        );
        assert_eq!(
            parse_dictionary("a=(1 2 3)", tight),
            Err(SfError::TooManyItems)
        );
        assert_eq!(
            parse_dictionary("a;x;y;z", tight),
            Err(SfError::TooManyParams)
        );
        assert!(parse_dictionary("a;x;x;x;x;y", tight).is_ok());
    }
}
