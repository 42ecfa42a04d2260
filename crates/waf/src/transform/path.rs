//! `normalizePath` and `normalizePathWin`.
//!
//! This follows libmodsecurity 3's `normalize_path_inplace` step by step (one buffer, a read
//! cursor `src` and a write cursor `dst` that never passes it), because its results on odd input
//! (`..` above a relative root, dot segments at the end, repeated slashes) are what the CRS
//! regression tests were written against.

/// The cursors and flags of one normalisation.
struct Normalizer {
    buf: Vec<u8>,
    /// Index of the last byte.
    end: usize,
    win: bool,
    relative: bool,
    src: usize,
    /// May go below zero for a moment while a `..` is being resolved.
    dst: isize,
    hit_root: bool,
    done: bool,
}

/// What happens to the byte at `src` after a segment was looked at.
enum Next {
    Copy,
    SkipCopy,
}

/// `normalizePath` (`win == false`) and `normalizePathWin`: removes `.` segments, resolves `..`
/// segments (never above the root; on a relative path they are kept once the root is reached),
/// collapses repeated slashes, and keeps a trailing slash only if the input had one. The Windows
/// variant turns every `\` into `/` first.
pub(super) fn normalize_path(input: &[u8], win: bool) -> Option<Vec<u8>> {
    let last = input.len().checked_sub(1)?;
    let is_sep = |c: u8| c == b'/' || (win && c == b'\\');
    let mut n = Normalizer {
        buf: input.to_vec(),
        end: last,
        win,
        relative: !is_sep(input[0]),
        src: 0,
        dst: 0,
        hit_root: false,
        done: false,
    };
    let trailing = is_sep(input[last]);
    n.run();
    let mut len = n.dst_index();
    if !trailing && len > 0 && n.buf[len - 1] == b'/' {
        len -= 1;
    }
    n.buf.truncate(len);
    Some(n.buf)
}

impl Normalizer {
    /// `dst` as an index; it is never negative between steps.
    fn dst_index(&self) -> usize {
        usize::try_from(self.dst).unwrap_or(0)
    }

    /// The output byte just before `dst`, if there is one.
    fn before_dst(&self) -> Option<u8> {
        let i = self.dst_index();
        if self.dst > 0 {
            self.buf.get(i - 1).copied()
        } else {
            None
        }
    }

    fn run(&mut self) {
        while !self.done && self.src <= self.end && self.dst_index() <= self.end {
            if self.win {
                self.backslashes_to_slashes();
            }
            let next = if self.src == self.end {
                self.done = true;
                self.segment_end()
            } else if self.buf[self.src + 1] != b'/' {
                Next::Copy
            } else {
                self.segment_end()
            };
            if let Next::Copy = next {
                self.copy();
            }
        }
    }

    /// The Windows variant converts the current and the next byte before looking at them.
    fn backslashes_to_slashes(&mut self) {
        for i in [self.src, self.src + 1] {
            if i <= self.end && self.buf[i] == b'\\' {
                self.buf[i] = b'/';
            }
        }
    }

    /// `src` is on the last byte of a path segment (or of the input): drops `.` segments and
    /// resolves `..` against what was written so far.
    fn segment_end(&mut self) -> Next {
        let c = self.buf[self.src];
        if c == b'/' && self.src != self.end {
            return Next::Copy;
        }
        if c != b'.' {
            if self.dst > 0 {
                self.hit_root = false;
            }
            return Next::Copy;
        }
        if self.before_dst() == Some(b'.') {
            self.back_reference()
        } else if self.dst == 0 {
            self.skip_dot(false)
        } else if self.before_dst() == Some(b'/') {
            self.skip_dot(true)
        } else {
            Next::Copy
        }
    }

    /// A `.` segment: dropped (with the slash written before it, if `drop_slash`).
    fn skip_dot(&mut self, drop_slash: bool) -> Next {
        if self.done {
            return Next::SkipCopy;
        }
        if drop_slash {
            self.dst -= 1;
        }
        self.src += 1;
        Next::Copy
    }

    /// A `..` segment: removes the previous segment, or is kept on a relative path that has no
    /// segment left to remove.
    fn back_reference(&mut self) -> Next {
        if self.relative && (self.hit_root || self.dst - 2 <= 0) {
            self.hit_root = true;
            return Next::Copy;
        }
        self.dst -= 3;
        while self.dst > 0 && self.buf[self.dst_index()] != b'/' {
            self.dst -= 1;
        }
        if self.dst <= 0 {
            self.hit_root = true;
            self.dst = 0;
            // An absolute path that ends on `..` keeps its root slash.
            if !self.relative && self.src == self.end {
                self.dst = 1;
            }
        }
        if self.done {
            return Next::SkipCopy;
        }
        self.src += 1;
        Next::Copy
    }

    /// Copies the byte at `src`, collapsing a run of slashes to its last one and dropping the
    /// first slash of a relative path.
    fn copy(&mut self) {
        if self.buf[self.src] == b'/' {
            while self.src < self.end
                && (self.buf[self.src + 1] == b'/' || (self.win && self.buf[self.src + 1] == b'\\'))
            {
                self.src += 1;
            }
            if self.relative && self.dst == 0 {
                self.src += 1;
                return;
            }
        }
        let d = self.dst_index();
        self.buf[d] = self.buf[self.src];
        self.dst += 1;
        self.src += 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::transform::Transform;

    fn check(tf: Transform, cases: &[(&str, &str)]) {
        for (input, want) in cases {
            let got = tf.apply(input.as_bytes());
            assert_eq!(String::from_utf8_lossy(&got), *want, "{tf} of {input:?}");
        }
    }

    #[test]
    fn normalize_path_reference_cases() {
        check(
            Transform::NormalizePath,
            &[
                ("", ""),
                ("/foo/bar/baz", "/foo/bar/baz"),
                ("/foo/bar\0/baz", "/foo/bar\0/baz"),
                ("x", "x"),
                (".", ""),
                ("./", ""),
                ("./..", ".."),
                ("./../", "../"),
                ("..", ".."),
                ("../", "../"),
                ("../.", ".."),
                (".././", "../"),
                ("../..", "../.."),
                ("../../", "../../"),
                ("/dir/foo//bar", "/dir/foo/bar"),
                ("dir/foo//bar/", "dir/foo/bar/"),
                ("dir/../foo", "foo"),
                ("dir/../../foo", "../foo"),
                ("dir/./.././../../foo/bar", "../../foo/bar"),
                ("dir/./.././../../foo/bar/.", "../../foo/bar"),
                ("dir/./.././../../foo/bar/./", "../../foo/bar/"),
                ("dir/./.././../../foo/bar/..", "../../foo"),
                ("dir/./.././../../foo/bar/../", "../../foo/"),
                ("dir/./.././../../foo/bar/", "../../foo/bar/"),
                ("dir//.//..//.//..//..//foo//bar", "../../foo/bar"),
                ("dir//.//..//.//..//..//foo//bar//", "../../foo/bar/"),
                ("dir/subdir/subsubdir/subsubsubdir/../../..", "dir"),
                ("dir/./subdir/./subsubdir/./subsubsubdir/../../..", "dir"),
                ("dir/./subdir/../subsubdir/../subsubsubdir/..", "dir"),
                ("/dir/./subdir/../subsubdir/../subsubsubdir/../", "/dir/"),
                (
                    "/./.././../../../../../../../\0/../etc/./passwd",
                    "/etc/passwd",
                ),
            ],
        );
    }

    #[test]
    fn normalize_path_more_cases() {
        check(
            Transform::NormalizePath,
            &[
                // The root slash that `..` stops at is then dropped as a trailing slash.
                ("/..", ""),
                ("/../", "/"),
                ("/", "/"),
                ("//", "/"),
                ("/a/b/../../..", ""),
                ("/etc/../etc/passwd", "/etc/passwd"),
                ("/a/.b/c", "/a/.b/c"),
                ("/a/b./c", "/a/b./c"),
                // A segment ending in `..` counts as a back-reference, as in libmodsecurity.
                ("/a/...", "/a"),
                ("a\\..\\b", "a\\..\\b"),
            ],
        );
    }

    #[test]
    fn normalize_path_win_reference_cases() {
        check(
            Transform::NormalizePathWin,
            &[
                ("", ""),
                ("\\foo\\bar\\baz", "/foo/bar/baz"),
                ("\\foo\\bar\0\\baz", "/foo/bar\0/baz"),
                ("x", "x"),
                (".", ""),
                (".\\", ""),
                (".\\..", ".."),
                (".\\..\\", "../"),
                ("..", ".."),
                ("..\\", "../"),
                ("..\\.", ".."),
                ("..\\.\\", "../"),
                ("..\\..", "../.."),
                ("..\\..\\", "../../"),
                ("\\dir\\foo\\\\bar", "/dir/foo/bar"),
                ("dir\\foo\\\\bar\\", "dir/foo/bar/"),
                ("dir\\..\\foo", "foo"),
                ("dir\\..\\..\\foo", "../foo"),
                ("dir\\.\\..\\.\\..\\..\\foo\\bar", "../../foo/bar"),
                ("dir\\.\\..\\.\\..\\..\\foo\\bar\\.", "../../foo/bar"),
                ("dir\\.\\..\\.\\..\\..\\foo\\bar\\..\\", "../../foo/"),
                (
                    "dir\\\\.\\\\..\\\\.\\\\..\\\\..\\\\foo\\\\bar\\\\",
                    "../../foo/bar/",
                ),
                ("dir\\subdir\\subsubdir\\subsubsubdir\\..\\..\\..", "dir"),
                (
                    "\\dir\\.\\subdir\\..\\subsubdir\\..\\subsubsubdir\\..\\",
                    "/dir/",
                ),
                (
                    "\\.\\..\\.\\..\\..\\..\\..\\..\\..\\..\\\\0\\..\\etc\\.\\passwd",
                    "/etc/passwd",
                ),
                ("c:\\windows\\..\\boot.ini", "c:/boot.ini"),
                ("/a\\b/..\\c", "/a/c"),
            ],
        );
    }
}
