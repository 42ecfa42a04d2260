//! Numeric comparisons: `@eq`, `@ne`, `@gt`, `@ge`, `@lt`, `@le`.
//!
//! libmodsecurity 3 converts both sides with C library functions: `@gt`/`@ge`/`@lt`/`@le`
//! use `atoll` (leading whitespace, sign, digits; no digits is 0; overflow saturates), `@eq`
//! uses `std::stoi` (the same, but a value outside the 32-bit `int` range is 0). `@ne` is
//! not in libmodsecurity 3; it is `@eq` inverted, as in ModSecurity 2.

/// Which comparison a [`NumberOp`] makes (value on the left, argument on the right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    /// `value == argument`
    Eq,
    /// `value != argument`
    Ne,
    /// `value > argument`
    Gt,
    /// `value >= argument`
    Ge,
    /// `value < argument`
    Lt,
    /// `value <= argument`
    Le,
}

/// A compiled numeric comparison.
#[derive(Debug)]
pub(super) struct NumberOp {
    cmp: Cmp,
    /// The argument as written, converted once.
    value: i64,
}

impl NumberOp {
    /// Converts the argument as written (used when it has no macros).
    pub(super) fn new(cmp: Cmp, argument: &str) -> NumberOp {
        NumberOp {
            cmp,
            value: convert(cmp, argument.as_bytes()),
        }
    }

    /// Compares `input` with the argument (`expanded` replaces it when it had macros).
    pub(super) fn matches(&self, input: &[u8], expanded: Option<&[u8]>) -> bool {
        let arg = expanded.map_or(self.value, |e| convert(self.cmp, e));
        let value = convert(self.cmp, input);
        match self.cmp {
            Cmp::Eq => value == arg,
            Cmp::Ne => value != arg,
            Cmp::Gt => value > arg,
            Cmp::Ge => value >= arg,
            Cmp::Lt => value < arg,
            Cmp::Le => value <= arg,
        }
    }
}

/// The conversion libmodsecurity applies for `cmp`.
fn convert(cmp: Cmp, text: &[u8]) -> i64 {
    match cmp {
        Cmp::Eq | Cmp::Ne => stoi(text),
        _ => atoll(text),
    }
}

/// The sign and digit run after C whitespace; `None` when there are no digits.
fn leading_integer(text: &[u8]) -> Option<(bool, &[u8])> {
    let start = text
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let rest = &text[start..];
    let (negative, rest) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (digits > 0).then(|| (negative, &rest[..digits]))
}

/// The magnitude of a digit run, capped just above `i64`'s range.
fn magnitude(digits: &[u8]) -> u128 {
    const CAP: u128 = 1 << 64;
    digits
        .iter()
        .fold(0u128, |acc, d| (acc * 10 + u128::from(d - b'0')).min(CAP))
}

/// C `atoll` as glibc implements it (via `strtoll`): saturates on overflow.
pub(crate) fn atoll(text: &[u8]) -> i64 {
    let Some((negative, digits)) = leading_integer(text) else {
        return 0;
    };
    let m = magnitude(digits);
    if negative {
        i64::try_from(m).map_or(i64::MIN, |v| -v)
    } else {
        i64::try_from(m).unwrap_or(i64::MAX)
    }
}

/// C++ `std::stoi`, with its exceptions (no digits, out of `int` range) turned into 0 as
/// libmodsecurity's `@eq` does.
pub(super) fn stoi(text: &[u8]) -> i64 {
    let Some((negative, digits)) = leading_integer(text) else {
        return 0;
    };
    let m = magnitude(digits);
    let signed = if negative {
        -i128::try_from(m).unwrap_or(i128::MAX)
    } else {
        i128::try_from(m).unwrap_or(i128::MAX)
    };
    i32::try_from(signed).map_or(0, i64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoll_like_c() {
        assert_eq!(atoll(b"42"), 42);
        assert_eq!(atoll(b"  \t-17abc"), -17);
        assert_eq!(atoll(b"+5"), 5);
        assert_eq!(atoll(b""), 0);
        assert_eq!(atoll(b"abc"), 0);
        assert_eq!(atoll(b"-"), 0);
        assert_eq!(atoll(b"0x10"), 0);
        assert_eq!(atoll(b"- 5"), 0);
        assert_eq!(atoll(b"99999999999999999999999"), i64::MAX);
        assert_eq!(atoll(b"-99999999999999999999999"), i64::MIN);
        assert_eq!(atoll(b"-9223372036854775808"), i64::MIN);
        assert_eq!(atoll(b"9223372036854775807"), i64::MAX);
    }

    #[test]
    fn stoi_like_cpp() {
        assert_eq!(stoi(b" 12x"), 12);
        assert_eq!(stoi(b"-2147483648"), -2147483648);
        assert_eq!(stoi(b"2147483647"), 2147483647);
        assert_eq!(stoi(b"2147483648"), 0);
        assert_eq!(stoi(b"x"), 0);
    }

    #[test]
    fn comparisons() {
        let ge = NumberOp::new(Cmp::Ge, "%{tx.inbound_anomaly_score_threshold}");
        assert!(ge.matches(b"5", Some(b"5")));
        assert!(!ge.matches(b"4", Some(b"5")));
        assert!(NumberOp::new(Cmp::Eq, "0").matches(b"", None));
        assert!(NumberOp::new(Cmp::Eq, "0").matches(b"abc", None));
        assert!(NumberOp::new(Cmp::Ne, "0").matches(b"3", None));
        assert!(NumberOp::new(Cmp::Gt, "10").matches(b"11", None));
        assert!(!NumberOp::new(Cmp::Gt, "10").matches(b"10", None));
        assert!(NumberOp::new(Cmp::Lt, "2").matches(b"1", None));
        assert!(NumberOp::new(Cmp::Le, "2").matches(b"2", None));
        assert!(!NumberOp::new(Cmp::Le, "2").matches(b"3", None));
        // `@eq` uses stoi: out-of-int values are 0.
        assert!(NumberOp::new(Cmp::Eq, "0").matches(b"4294967296", None));
        assert!(NumberOp::new(Cmp::Gt, "0").matches(b"4294967296", None));
    }
}
