//! XML character classes (XML 1.0 fifth edition, as libxml2 applies them) and input decoding.

/// `Char`: characters allowed anywhere in a document.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// `S`: XML whitespace.
pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// `NameStartChar`.
pub(super) fn is_name_start(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}'
        | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}'
        | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}'
        | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// `NameChar`.
pub(super) fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Turns the raw body into text: BOM and `encoding=` detection (UTF-8, UTF-16 with a BOM,
/// ISO-8859-1 / US-ASCII), then XML line-end normalization (CRLF and lone CR become LF).
/// On an encoding error the text decoded so far comes with the error, so that the tree
/// built before it survives (libxml2 stops at the first bad byte).
pub(super) fn decode(body: &[u8]) -> (String, Option<String>) {
    let (text, err) = if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
        utf8(rest)
    } else if let Some(rest) = body.strip_prefix(b"\xFF\xFE") {
        utf16(rest, u16::from_le_bytes)
    } else if let Some(rest) = body.strip_prefix(b"\xFE\xFF") {
        utf16(rest, u16::from_be_bytes)
    } else {
        match declared_encoding(body).map(|e| e.to_ascii_lowercase()) {
            None => utf8(body),
            Some(e) if matches!(e.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") => utf8(body),
            Some(e)
                if matches!(
                    e.as_str(),
                    "iso-8859-1" | "iso_8859-1" | "latin1" | "iso-latin-1"
                ) =>
            {
                (body.iter().map(|&b| char::from(b)).collect(), None)
            }
            Some(e) => (String::new(), Some(format!("Unsupported encoding {e}"))),
        }
    };
    (normalize_line_ends(&text), err)
}

fn utf8(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), None),
        Err(e) => {
            let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned();
            (
                valid,
                Some("Input is not proper UTF-8, indicate encoding !".to_owned()),
            )
        }
    }
}

fn utf16(bytes: &[u8], read: fn([u8; 2]) -> u16) -> (String, Option<String>) {
    let units = bytes.chunks_exact(2).map(|c| read([c[0], c[1]]));
    let mut out = String::with_capacity(bytes.len() / 2);
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => out.push(c),
            Err(_) => return (out, Some("Input is not proper UTF-16".to_owned())),
        }
    }
    let err = (!bytes.len().is_multiple_of(2)).then(|| "Input is not proper UTF-16".to_owned());
    (out, err)
}

/// The `encoding` pseudo-attribute of an XML declaration at the very start, if any.
fn declared_encoding(body: &[u8]) -> Option<String> {
    if !body.starts_with(b"<?xml") {
        return None;
    }
    let end = memchr::memmem::find(body, b"?>")?;
    let decl = &body[..end];
    let at = memchr::memmem::find(decl, b"encoding")?;
    let rest = &decl[at + 8..];
    let rest = rest
        .iter()
        .skip_while(|c| c.is_ascii_whitespace())
        .copied()
        .collect::<Vec<u8>>();
    let rest = rest.strip_prefix(b"=")?;
    let rest: Vec<u8> = rest
        .iter()
        .skip_while(|c| c.is_ascii_whitespace())
        .copied()
        .collect();
    let quote = *rest.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let close = memchr::memchr(quote, &rest[1..])?;
    Some(String::from_utf8_lossy(&rest[1..=close]).into_owned())
}

fn normalize_line_ends(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(decode(b"\xEF\xBB\xBF<a/>"), ("<a/>".to_owned(), None));
        assert_eq!(decode(b"\xFF\xFE<\0a\0/\0>\0"), ("<a/>".to_owned(), None));
        assert_eq!(
            decode(b"<a>\r\nb\rc</a>"),
            ("<a>\nb\nc</a>".to_owned(), None)
        );
        assert_eq!(
            decode(b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xe9</a>"),
            (
                "<?xml version='1.0' encoding='ISO-8859-1'?><a>\u{e9}</a>".to_owned(),
                None
            )
        );
        let (prefix, err) = decode(b"<a>x\xff</a>");
        assert_eq!(prefix, "<a>x");
        assert!(err.is_some());
        assert!(
            decode(b"<?xml version=\"1.0\" encoding=\"EBCDIC-US\"?><a/>")
                .1
                .is_some()
        );
        assert!(decode(b"\xFF\xFE<\0a").1.is_some());
    }

    #[test]
    fn classes() {
        assert!(
            is_name_start('a') && is_name_start(':') && !is_name_start('-') && !is_name_start('1')
        );
        assert!(is_name_char('-') && is_name_char('1') && is_name_char('.'));
        assert!(!is_xml_char('\u{1}') && !is_xml_char('\u{FFFE}') && is_xml_char('\u{10000}'));
    }
}
