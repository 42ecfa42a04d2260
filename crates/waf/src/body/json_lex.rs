//! JSON tokenizer with yajl 2.1's acceptance rules and error texts (the JSON library
//! libmodsecurity 3 is built with): loose UTF-8 validation inside strings, `\v`/`\f` accepted
//! as whitespace, numbers kept as their source text, and yajl's `\u` decoding quirks.

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    LeftBrace,
    RightBrace,
    LeftBracket,
    RightBracket,
    Comma,
    Colon,
    Null,
    Bool(bool),
    /// Number as written in the document.
    Number(Vec<u8>),
    /// String contents, escapes decoded.
    Str(Vec<u8>),
}

/// What the lexer found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lexed {
    Token(Token),
    /// Input ended, possibly inside a token (yajl then waits for more data).
    Eof,
    /// Lexical error, with yajl's message.
    Error(&'static str),
}

const INVALID_UTF8: &str = "invalid bytes in UTF8 string.";
const INVALID_ESCAPE: &str = "inside a string, '\\' occurs before a character which it may not.";
const INVALID_STRING_CHAR: &str = "invalid character inside string.";
const INVALID_HEX: &str = "invalid (non-hex) character occurs after '\\u' inside string.";
const INVALID_CHAR: &str = "invalid char in json text.";
const INVALID_LITERAL: &str = "invalid string in json text.";
const NO_EXPONENT_DIGIT: &str = "malformed number, a digit is required after the exponent.";
const NO_DECIMAL_DIGIT: &str = "malformed number, a digit is required after the decimal point.";
const NO_MINUS_DIGIT: &str = "malformed number, a digit is required after the minus sign.";
const COMMENT: &str = "probable comment found in input text, comments are not enabled.";

/// A cursor over the document.
pub(super) struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// Lexes `text`, which should already end with the single space yajl feeds when the parse
    /// is completed (so a number at the very end is terminated).
    pub(super) fn new(text: &'a [u8]) -> Self {
        Self { text, pos: 0 }
    }

    fn next_byte(&mut self) -> Option<u8> {
        let c = self.text.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Lexes the next token.
    pub(super) fn lex(&mut self) -> Lexed {
        loop {
            let Some(c) = self.next_byte() else {
                return Lexed::Eof;
            };
            let tok = match c {
                b'{' => Token::LeftBrace,
                b'}' => Token::RightBrace,
                b'[' => Token::LeftBracket,
                b']' => Token::RightBracket,
                b',' => Token::Comma,
                b':' => Token::Colon,
                b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => continue,
                b't' => return self.literal(b"rue", Token::Bool(true)),
                b'f' => return self.literal(b"alse", Token::Bool(false)),
                b'n' => return self.literal(b"ull", Token::Null),
                b'"' => return self.string(),
                b'-' | b'0'..=b'9' => {
                    self.pos -= 1;
                    return self.number();
                }
                b'/' => return Lexed::Error(COMMENT),
                _ => return Lexed::Error(INVALID_CHAR),
            };
            return Lexed::Token(tok);
        }
    }

    fn literal(&mut self, rest: &[u8], tok: Token) -> Lexed {
        for &want in rest {
            match self.next_byte() {
                None => return Lexed::Eof,
                Some(c) if c == want => {}
                Some(_) => return Lexed::Error(INVALID_LITERAL),
            }
        }
        Lexed::Token(tok)
    }

    fn string(&mut self) -> Lexed {
        let start = self.pos;
        let mut escapes = false;
        loop {
            let Some(c) = self.next_byte() else {
                return Lexed::Eof;
            };
            match c {
                b'"' => break,
                b'\\' => {
                    escapes = true;
                    let Some(e) = self.next_byte() else {
                        return Lexed::Eof;
                    };
                    if e == b'u' {
                        for _ in 0..4 {
                            match self.next_byte() {
                                None => return Lexed::Eof,
                                Some(h) if h.is_ascii_hexdigit() => {}
                                Some(_) => return Lexed::Error(INVALID_HEX),
                            }
                        }
                    } else if !matches!(e, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') {
                        return Lexed::Error(INVALID_ESCAPE);
                    }
                }
                0x00..=0x1f => return Lexed::Error(INVALID_STRING_CHAR),
                0x80..=0xff => match self.utf8_tail(c) {
                    Some(true) => {}
                    Some(false) => return Lexed::Error(INVALID_UTF8),
                    None => return Lexed::Eof,
                },
                _ => {}
            }
        }
        let raw = &self.text[start..self.pos - 1];
        let value = if escapes {
            decode_string(raw)
        } else {
            raw.to_vec()
        };
        Lexed::Token(Token::Str(value))
    }

    /// yajl's UTF-8 check: only lead-byte shape and continuation bytes are verified (overlong
    /// forms and surrogates pass). `None` means the input ended inside the sequence.
    fn utf8_tail(&mut self, lead: u8) -> Option<bool> {
        let tail = match lead {
            0xc0..=0xdf => 1,
            0xe0..=0xef => 2,
            0xf0..=0xf7 => 3,
            _ => return Some(false),
        };
        for _ in 0..tail {
            let c = self.next_byte()?;
            if c >> 6 != 0b10 {
                return Some(false);
            }
        }
        Some(true)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.text.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Lexed {
        let start = self.pos;
        if self.text.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.text.get(self.pos) {
            None => return Lexed::Eof,
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            Some(_) => return Lexed::Error(NO_MINUS_DIGIT),
        }
        if self.text.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return if self.pos >= self.text.len() {
                    Lexed::Eof
                } else {
                    Lexed::Error(NO_DECIMAL_DIGIT)
                };
            }
        }
        if matches!(self.text.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.text.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return if self.pos >= self.text.len() {
                    Lexed::Eof
                } else {
                    Lexed::Error(NO_EXPONENT_DIGIT)
                };
            }
        }
        if self.pos >= self.text.len() {
            // yajl must see the byte after a number to know it ended.
            return Lexed::Eof;
        }
        Lexed::Token(Token::Number(self.text[start..self.pos].to_vec()))
    }
}

/// Decodes the escapes of a lexically valid string body the way `yajl_string_decode` does,
/// including its quirks: a high surrogate followed by any `\u` escape is combined with it
/// unchecked, and a lone high surrogate becomes `?` and swallows the next byte.
fn decode_string(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        i += 1;
        let esc = raw.get(i).copied().unwrap_or(b'?');
        i += 1;
        match esc {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b'f' => out.push(0x0c),
            b'b' => out.push(0x08),
            b't' => out.push(b'\t'),
            b'u' => i = decode_unicode_escape(raw, i, &mut out),
            other => out.push(other),
        }
    }
    out
}

/// Handles `\uXXXX` whose hex digits start at `i`; returns the index after what was consumed.
fn decode_unicode_escape(raw: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let mut cp = hex4(raw, i);
    let mut next = i + 4;
    if cp & 0xfc00 == 0xd800 {
        if raw.get(next) == Some(&b'\\') && raw.get(next + 1) == Some(&b'u') {
            let low = hex4(raw, next + 2);
            cp = ((cp & 0x3f) << 10) | ((((cp >> 6) & 0xf) + 1) << 16) | (low & 0x3ff);
            next += 6;
        } else {
            out.push(b'?');
            return next + 1;
        }
    }
    push_utf8(cp, out);
    next
}

fn hex4(raw: &[u8], at: usize) -> u32 {
    (0..4).fold(0u32, |acc, k| {
        let d = raw
            .get(at + k)
            .and_then(|c| (*c as char).to_digit(16))
            .unwrap_or(0);
        (acc << 4) | d
    })
}

/// yajl's `Utf32toUtf8`: encodes without rejecting surrogates; values of 2^21 and above
/// become `?`.
fn push_utf8(cp: u32, out: &mut Vec<u8>) {
    // Each `as u8` below keeps only bits already masked or shifted into range.
    if cp < 0x80 {
        out.push(cp as u8);
    } else if cp < 0x800 {
        out.extend_from_slice(&[(cp >> 6) as u8 | 0xc0, (cp & 0x3f) as u8 | 0x80]);
    } else if cp < 0x10000 {
        out.extend_from_slice(&[
            (cp >> 12) as u8 | 0xe0,
            ((cp >> 6) & 0x3f) as u8 | 0x80,
            (cp & 0x3f) as u8 | 0x80,
        ]);
    } else if cp < 0x200000 {
        out.extend_from_slice(&[
            (cp >> 18) as u8 | 0xf0,
            ((cp >> 12) & 0x3f) as u8 | 0x80,
            ((cp >> 6) & 0x3f) as u8 | 0x80,
            (cp & 0x3f) as u8 | 0x80,
        ]);
    } else {
        out.push(b'?');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> Vec<Lexed> {
        let mut lx = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let t = lx.lex();
            let stop = !matches!(t, Lexed::Token(_));
            out.push(t);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn numbers_keep_source_text() {
        assert_eq!(
            all(b"-0.50e+3 "),
            vec![
                Lexed::Token(Token::Number(b"-0.50e+3".to_vec())),
                Lexed::Eof
            ]
        );
        assert_eq!(all(b"12"), vec![Lexed::Eof]);
        assert_eq!(all(b"- "), vec![Lexed::Error(NO_MINUS_DIGIT)]);
        assert_eq!(all(b"1. "), vec![Lexed::Error(NO_DECIMAL_DIGIT)]);
        assert_eq!(all(b"1e "), vec![Lexed::Error(NO_EXPONENT_DIGIT)]);
    }

    #[test]
    fn string_escapes() {
        let t = all(br#""a\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00" "#);
        assert_eq!(
            t[0],
            Lexed::Token(Token::Str(
                "a\"\\/\u{8}\u{c}\n\r\tAé€😀".as_bytes().to_vec()
            ))
        );
    }

    #[test]
    fn yajl_surrogate_quirks() {
        assert_eq!(
            all(br#""\ud800abc" "#)[0],
            Lexed::Token(Token::Str(b"?bc".to_vec()))
        );
        assert_eq!(
            all(br#""\udc00" "#)[0],
            Lexed::Token(Token::Str(vec![0xed, 0xb0, 0x80]))
        );
        assert_eq!(all(br#""\u0000" "#)[0], Lexed::Token(Token::Str(vec![0])));
    }

    #[test]
    fn string_errors() {
        assert_eq!(all(b"\"a\x01\"")[0], Lexed::Error(INVALID_STRING_CHAR));
        assert_eq!(all(br#""\x""#)[0], Lexed::Error(INVALID_ESCAPE));
        assert_eq!(all(br#""\u12g4""#)[0], Lexed::Error(INVALID_HEX));
        assert_eq!(all(b"\"\xff\"")[0], Lexed::Error(INVALID_UTF8));
        assert_eq!(all(b"\"\xc3(\"")[0], Lexed::Error(INVALID_UTF8));
        assert_eq!(all(b"\"abc")[0], Lexed::Eof);
        // Loose validation: overlong and surrogate encodings pass, raw bytes are kept.
        assert_eq!(
            all(b"\"\xc0\x80\xed\xa0\x80\" ")[0],
            Lexed::Token(Token::Str(vec![0xc0, 0x80, 0xed, 0xa0, 0x80]))
        );
    }

    #[test]
    fn literals_comments_and_junk() {
        assert_eq!(
            all(b"true false null "),
            vec![
                Lexed::Token(Token::Bool(true)),
                Lexed::Token(Token::Bool(false)),
                Lexed::Token(Token::Null),
                Lexed::Eof
            ]
        );
        assert_eq!(all(b"tru ")[0], Lexed::Error(INVALID_LITERAL));
        assert_eq!(all(b"// x")[0], Lexed::Error(COMMENT));
        assert_eq!(all(b"'a'")[0], Lexed::Error(INVALID_CHAR));
        assert_eq!(all(b"\x0b\x0c[")[0], Lexed::Token(Token::LeftBracket));
    }
}
