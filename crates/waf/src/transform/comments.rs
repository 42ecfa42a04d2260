//! Comment handling: `replaceComments`, `removeComments` and `removeCommentsChar`.

use memchr::memmem;

/// `replaceComments`: each `/* … */` becomes one space; an unterminated comment runs to the end
/// and also becomes one space. A lone `*/` stays.
pub(super) fn replace_comments(input: &[u8]) -> Option<Vec<u8>> {
    let mut open = memmem::find(input, b"/*")?;
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    loop {
        out.extend_from_slice(&rest[..open]);
        out.push(b' ');
        let body = &rest[open + 2..];
        let Some(close) = memmem::find(body, b"*/") else {
            return Some(out);
        };
        rest = &body[close + 2..];
        match memmem::find(rest, b"/*") {
            Some(next) => open = next,
            None => {
                out.extend_from_slice(rest);
                return Some(out);
            }
        }
    }
}

/// `removeComments`, reproducing libmodsecurity 3: `/* … */` and `<!-- … -->` are removed;
/// `--` or `#` outside a comment cuts the rest of the input off; an unterminated comment becomes
/// one space. Quirk kept on purpose: the byte right after a closing `*/` or `-->` is copied
/// without being looked at (so a comment starting there is not seen), and when the closing
/// delimiter ends the input that byte is the C string's terminating NUL, which is copied too.
pub(super) fn remove_comments(input: &[u8]) -> Option<Vec<u8>> {
    input.iter().position(|c| b"/<-#".contains(c))?;
    let at = |i: usize, pat: &[u8]| input.get(i..).is_some_and(|s| s.starts_with(pat));
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let mut in_comment = false;
    while i < input.len() {
        if !in_comment {
            if at(i, b"/*") {
                in_comment = true;
                i += 2;
            } else if at(i, b"<!--") {
                in_comment = true;
                i += 4;
            } else if at(i, b"--") || input[i] == b'#' {
                break;
            } else {
                out.push(input[i]);
                i += 1;
            }
        } else {
            let close = if at(i, b"*/") {
                2
            } else if at(i, b"-->") {
                3
            } else {
                i += 1;
                continue;
            };
            in_comment = false;
            i += close;
            out.push(input.get(i).copied().unwrap_or(0));
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    Some(out)
}

/// `removeCommentsChar`: deletes the comment delimiters `/*`, `*/`, `<!--`, `-->`, `--` and `#`
/// and keeps what is between them.
pub(super) fn remove_comments_char(input: &[u8]) -> Option<Vec<u8>> {
    const DELIMITERS: [&[u8]; 6] = [b"/*", b"*/", b"<!--", b"-->", b"--", b"#"];
    input.iter().position(|c| b"/*<-#".contains(c))?;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        match DELIMITERS.iter().find(|d| rest.starts_with(d)) {
            Some(d) => i += d.len(),
            None => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::transform::Transform;

    fn t(tf: Transform, input: &[u8]) -> Vec<u8> {
        tf.apply(input).into_owned()
    }

    #[test]
    fn replace_comments() {
        let r = |s: &[u8]| t(Transform::ReplaceComments, s);
        assert_eq!(r(b""), b"");
        assert_eq!(r(b"Test\0Case"), b"Test\0Case");
        assert_eq!(r(b"/* TestCase */"), b" ");
        assert_eq!(r(b"/*TestCase*/"), b" ");
        assert_eq!(r(b"Before/* TestCase */After"), b"Before After");
        assert_eq!(r(b"Before /* TestCase */ After"), b"Before   After");
        assert_eq!(r(b"/* Test\r\nCase */"), b" ");
        assert_eq!(r(b"Before/* Test\r\nCase "), b"Before ");
        assert_eq!(r(b"Test\r\nCase */After"), b"Test\r\nCase */After");
        assert_eq!(r(b"/**/"), b" ");
        assert_eq!(r(b"/*/"), b" ");
        assert_eq!(r(b"a/*x*/b/*y*/c/*z"), b"a b c ");
        assert_eq!(r(b"UNION/**/SELECT"), b"UNION SELECT");
    }

    #[test]
    fn remove_comments() {
        let r = |s: &[u8]| t(Transform::RemoveComments, s);
        assert_eq!(r(b""), b"");
        assert_eq!(r(b"TestCase"), b"TestCase");
        assert_eq!(r(b"Test\0Case"), b"Test\0Case");
        assert_eq!(r(b"/* TestCase */"), b"\0");
        assert_eq!(r(b"/*TestCase*/"), b"\0");
        assert_eq!(r(b"Before/* TestCase */After"), b"BeforeAfter");
        assert_eq!(r(b"Before TestCase */ After"), b"Before TestCase */ After");
        assert_eq!(r(b"/* Test\r\nCase */"), b"\0");
        assert_eq!(r(b"/*Before/* Test\r\nCase "), b" ");
        assert_eq!(r(b"Before /* Test\nCase "), b"Before  ");
        assert_eq!(
            r(b"Before/* T*/ /* e */ /* s */ /* t */\r\nCase "),
            b"Before   \r\nCase "
        );
        assert_eq!(
            r(b"Before /* */ ops */ Test\nCase "),
            b"Before  ops */ Test\nCase "
        );
        assert_eq!(r(b"/*Test\r\nCase */After"), b"After");
        assert_eq!(r(b"Test\nCase /**/ After"), b"Test\nCase  After");
        assert_eq!(r(b"Test/*\nCase */ After"), b"Test After");
        assert_eq!(r(b"select 1 -- x"), b"select 1 ");
        assert_eq!(r(b"a#b"), b"a");
        assert_eq!(r(b"a<!-- x -->b<!--c"), b"ab ");
        // The byte after a closing delimiter is copied blindly.
        assert_eq!(r(b"/*a*//*b*/"), b"/*b*/");
    }

    #[test]
    fn remove_comments_char() {
        let r = |s: &[u8]| t(Transform::RemoveCommentsChar, s);
        assert_eq!(r(b""), b"");
        assert_eq!(r(b"Test\0Case"), b"Test\0Case");
        assert_eq!(r(b"/* TestCase */"), b" TestCase ");
        assert_eq!(r(b"/*TestCase*/"), b"TestCase");
        assert_eq!(r(b"Before/* TestCase */After"), b"Before TestCase After");
        assert_eq!(r(b"Before /* Test\nCase "), b"Before  Test\nCase ");
        assert_eq!(r(b"Test\r\nCase */After"), b"Test\r\nCase After");
        assert_eq!(r(b"<!--x-->y--z#w"), b"xyzw");
        assert_eq!(r(b"a---b"), b"a-b");
        assert_eq!(r(b"a--->b"), b"a->b");
        assert_eq!(r(b"/*/"), b"/");
    }
}
