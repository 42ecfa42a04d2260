//! `Content-Disposition` part header parsing (`Multipart::parse_content_disposition` in
//! libmodsecurity 3), with its numeric error codes.

/// What a successful parse found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Disposition {
    /// Every `name=` value seen, in order (`MULTIPART_NAME`), even when later rejected.
    pub(super) names: Vec<Vec<u8>>,
    /// Every `filename=` value seen, in order (`MULTIPART_FILENAME`).
    pub(super) filenames: Vec<Vec<u8>>,
    /// The part name (empty when absent).
    pub(super) name: Vec<u8>,
    /// The `filename` parameter (empty when absent).
    pub(super) filename: Vec<u8>,
    /// A value was single-quoted, or a name/filename contains `'` outside double quotes.
    pub(super) invalid_quoting: bool,
}

const MIME_CHARSET_SPECIAL: &[u8] = b"!#$%&+-^_`{}~";
const ATTR_CHAR_SPECIAL: &[u8] = b"!#$&+-.^_`~";

/// Parses a `Content-Disposition` value for a part that already has `name` and `filename`
/// (non-empty only when an earlier attempt failed halfway); `Err(code)` carries
/// libmodsecurity's negative code. The partially filled result is returned alongside so
/// flags and seen names survive errors.
pub(super) fn parse(
    value: &[u8],
    name: Vec<u8>,
    filename: Vec<u8>,
) -> (Disposition, Result<(), i32>) {
    let mut d = Disposition {
        name,
        filename,
        ..Disposition::default()
    };
    let r = Cursor { v: value, p: 0 }.run(&mut d);
    (d, r)
}

/// A position in the value; reading past the end yields NUL like the C string does.
struct Cursor<'a> {
    v: &'a [u8],
    p: usize,
}

impl Cursor<'_> {
    fn at(&self, i: usize) -> u8 {
        self.v.get(i).copied().unwrap_or(0)
    }

    fn cur(&self) -> u8 {
        self.at(self.p)
    }

    fn skip_ws(&mut self) {
        while matches!(self.cur(), b' ' | b'\t') {
            self.p += 1;
        }
    }

    fn run(&mut self, d: &mut Disposition) -> Result<(), i32> {
        if !self.v.starts_with(b"form-data") {
            return Err(-1);
        }
        self.p = 9;
        self.skip_ws();
        if self.cur() == 0 {
            return Ok(());
        }
        if self.cur() != b';' {
            return Err(-2);
        }
        self.p += 1;
        let mut filename_star: Vec<u8> = Vec::new();
        while self.cur() != 0 {
            let (name, value, quote) = self.parameter(d)?;
            match name.as_slice() {
                b"name" => {
                    d.invalid_quoting |= quote != b'"' && value.contains(&b'\'');
                    d.names.push(value.clone());
                    if !d.name.is_empty() {
                        return Err(-14);
                    }
                    d.name = value;
                }
                b"filename" => {
                    d.invalid_quoting |= quote != b'"' && value.contains(&b'\'');
                    d.filenames.push(value.clone());
                    if !d.filename.is_empty() {
                        return Err(-15);
                    }
                    d.filename = value;
                }
                b"filename*" => {
                    if !filename_star.is_empty() {
                        return Err(-20);
                    }
                    filename_star = value;
                }
                _ => return Err(-11),
            }
            self.after_parameter(d)?;
        }
        if !filename_star.is_empty() && d.filename.is_empty() {
            return Err(-21);
        }
        Ok(())
    }

    /// Reads `name = value`; returns the name, the value and the quote used (0 when none).
    fn parameter(&mut self, d: &mut Disposition) -> Result<(Vec<u8>, Vec<u8>, u8), i32> {
        self.skip_ws();
        if self.cur() == 0 {
            return Err(-3);
        }
        let start = self.p;
        while !matches!(self.cur(), 0 | b'=' | b'\t' | b' ') {
            self.p += 1;
        }
        if self.cur() == 0 {
            return Err(-4);
        }
        let name = self.v[start..self.p].to_vec();
        self.skip_ws();
        if self.cur() == 0 {
            return Err(-5);
        }
        if self.cur() != b'=' {
            return Err(-13);
        }
        self.p += 1;
        self.skip_ws();
        if self.cur() == 0 {
            return Err(-6);
        }
        if name == b"filename*" {
            return Ok((name, self.ext_value()?, 0));
        }
        let quote = self.cur();
        if quote == b'"' || quote == b'\'' {
            d.invalid_quoting |= quote == b'\'';
            return Ok((name, self.quoted(quote)?, quote));
        }
        let start = self.p;
        while is_token_char(self.cur()) {
            self.p += 1;
        }
        Ok((name, self.v[start..self.p].to_vec(), 0))
    }

    /// RFC 5987 `charset'[language]'value`; returns the still-encoded value.
    fn ext_value(&mut self) -> Result<Vec<u8>, i32> {
        let charset_start = self.p;
        while self.cur() != 0
            && (self.cur().is_ascii_alphanumeric() || MIME_CHARSET_SPECIAL.contains(&self.cur()))
        {
            self.p += 1;
        }
        if self.cur() != b'\'' || self.p == charset_start {
            return Err(-16);
        }
        self.p += 1;
        while !matches!(self.cur(), 0 | b'\'') {
            self.p += 1;
        }
        if self.cur() != b'\'' {
            return Err(-17);
        }
        self.p += 1;
        let start = self.p;
        while !matches!(self.cur(), 0 | b';') {
            let c = self.cur();
            if c == b'%' {
                let (h1, h2) = (self.at(self.p + 1), self.at(self.p + 2));
                if h1 == 0 || !h1.is_ascii_hexdigit() || !h2.is_ascii_hexdigit() {
                    return Err(-18);
                }
                self.p += 3;
            } else if c.is_ascii_alphanumeric() || ATTR_CHAR_SPECIAL.contains(&c) {
                self.p += 1;
            } else {
                return Err(-19);
            }
        }
        Ok(self.v[start..self.p].to_vec())
    }

    /// A quoted value where only the quote and `\` may be escaped (other backslashes are kept,
    /// as libmodsecurity tolerates what IE sends).
    fn quoted(&mut self, quote: u8) -> Result<Vec<u8>, i32> {
        self.p += 1;
        if self.cur() == 0 {
            return Err(-7);
        }
        let mut value = Vec::new();
        while self.cur() != 0 {
            let c = self.cur();
            if c == b'\\' {
                let next = self.at(self.p + 1);
                if next == 0 {
                    return Err(-8);
                }
                if next == quote || next == b'\\' {
                    self.p += 1;
                }
            } else if c == quote {
                break;
            }
            value.push(self.cur());
            self.p += 1;
        }
        // Over the closing quote; an unterminated value simply ends the header.
        self.p = (self.p + 1).min(self.v.len());
        Ok(value)
    }

    /// After a value only whitespace and then `;` or the end may follow.
    fn after_parameter(&mut self, d: &mut Disposition) -> Result<(), i32> {
        if self.cur() == 0 {
            return Ok(());
        }
        self.skip_ws();
        match self.cur() {
            0 => Ok(()),
            b';' => {
                self.p += 1;
                Ok(())
            }
            _ => {
                if matches!(self.at(self.p.wrapping_sub(1)), b'\'' | b'"') {
                    d.invalid_quoting = true;
                }
                Err(-12)
            }
        }
    }
}

/// RFC 2045 token characters.
fn is_token_char(c: u8) -> bool {
    c > 32
        && c < 127
        && !matches!(
            c,
            b'(' | b')'
                | b'<'
                | b'>'
                | b'@'
                | b','
                | b';'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'='
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str) -> Disposition {
        let (d, r) = parse(v.as_bytes(), Vec::new(), Vec::new());
        assert_eq!(r, Ok(()), "{v}");
        d
    }

    fn code(v: &str) -> i32 {
        parse(v.as_bytes(), Vec::new(), Vec::new()).1.expect_err(v)
    }

    #[test]
    fn names_and_filenames() {
        let d = ok("form-data; name=\"file\"; filename=\"a b.php\"");
        assert_eq!(
            (d.name.as_slice(), d.filename.as_slice()),
            (&b"file"[..], &b"a b.php"[..])
        );
        assert!(!d.invalid_quoting);
        assert_eq!(ok("form-data;name=plain").name, b"plain");
        assert_eq!(ok("form-data").name, b"");
        assert_eq!(ok("form-data; name=\"a\\\"b\\\\c\\d\"").name, b"a\"b\\c\\d");
        assert_eq!(
            ok("form-data; name=\"x\"; filename=\"f\"; filename*=UTF-8''f%20g").filename,
            b"f"
        );
    }

    #[test]
    fn quoting_flags() {
        assert!(ok("form-data; name='a'").invalid_quoting);
        assert!(ok("form-data; name=a'b").invalid_quoting);
        assert!(!ok("form-data; name=\"a'b\"").invalid_quoting);
        let (d, r) = parse(b"form-data; name=\"a\"b", Vec::new(), Vec::new());
        assert_eq!(r, Err(-12));
        assert!(d.invalid_quoting);
    }

    #[test]
    fn error_codes() {
        assert_eq!(code("attachment; name=a"), -1);
        assert_eq!(code("form-data name=a"), -2);
        assert_eq!(code("form-data; "), -3);
        assert_eq!(code("form-data; name"), -4);
        assert_eq!(code("form-data; name x"), -13);
        assert_eq!(code("form-data; name="), -6);
        assert_eq!(code("form-data; name=\""), -7);
        assert_eq!(code("form-data; name=\"a\\"), -8);
        assert_eq!(code("form-data; foo=bar"), -11);
        assert_eq!(code("form-data; name=a b"), -12);
        assert_eq!(code("form-data; name=a; name=b"), -14);
        assert_eq!(code("form-data; name=a; filename=b; filename=c"), -15);
        assert_eq!(code("form-data; name=a; filename*='x'y"), -16);
        assert_eq!(code("form-data; name=a; filename*=utf-8'x"), -17);
        assert_eq!(code("form-data; name=a; filename*=utf-8''%zz"), -18);
        assert_eq!(code("form-data; name=a; filename*=utf-8''a b"), -19);
        assert_eq!(
            code("form-data; name=a; filename*=utf-8''a; filename*=utf-8''b"),
            -20
        );
        assert_eq!(code("form-data; name=a; filename*=utf-8''a"), -21);
        assert_eq!(code("Form-Data; name=a"), -1);
        assert_eq!(code("form-data; Name=a"), -11);
    }

    #[test]
    fn unterminated_quote_ends_the_value() {
        assert_eq!(ok("form-data; name=\"abc").name, b"abc");
    }
}
