//! Durations as Gateway API writes them (GEP-2257): one to four `<digits><unit>` parts,
//! each of one to five digits, units `h`, `m`, `s` and `ms`, e.g. `250ms`, `1s`, `1m30s`,
//! `1h`. No fractions, no signs, no spaces. `0s` is zero.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a duration must look like, for error messages.
pub const EXPECTED: &str = "a duration such as `250ms`, `1s`, `1m30s` or `1h` (1-4 parts of \
                            1-5 digits, each followed by h, m, s or ms)";

/// Why text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    text: String,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a duration; expected {EXPECTED}", self.text)
    }
}

impl std::error::Error for DurationError {}

/// Parses a Gateway API duration (GEP-2257).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let fail = || DurationError {
        text: text.to_owned(),
    };
    let bytes = text.as_bytes();
    let (mut pos, mut parts, mut millis) = (0usize, 0usize, 0u64);
    while pos < bytes.len() {
        let digits = bytes[pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 5 || parts == 4 {
            return Err(fail());
        }
        // At most five digits: cannot overflow.
        let value: u64 = text[pos..pos + digits].parse().map_err(|_| fail())?;
        pos += digits;
        let rest = &text[pos..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else {
            return Err(fail());
        };
        pos += len;
        parts += 1;
        millis += value * unit;
    }
    if parts == 0 {
        return Err(fail());
    }
    Ok(Duration::from_millis(millis))
}

/// The shortest Gateway API spelling of `d` (milliseconds precision, truncated): `0s`,
/// `250ms`, `1m30s`, `2h`. Hours above 99999 are not representable and are capped there.
pub fn format(d: Duration) -> String {
    const MAX: u64 = 99_999 * 3_600_000 + 3_599_999;
    let total = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).min(MAX);
    let hours = total / 3_600_000;
    let rest = total % 3_600_000;
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, ms) = (rest / 1_000, rest % 1_000);
    let mut out = String::new();
    for (value, unit) in [(hours, "h"), (minutes, "m"), (seconds, "s"), (ms, "ms")] {
        if value > 0 {
            let _ = write!(out, "{value}{unit}");
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// A duration field: written as a Gateway API duration string, held as a [`Duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct GatewayDuration(pub Duration);

impl GatewayDuration {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for GatewayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl<'de> Deserialize<'de> for GatewayDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = GatewayDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GatewayDuration, E> {
                parse(v).map(GatewayDuration).map_err(E::custom)
            }
        }
        d.deserialize_str(DurationVisitor)
    }
}

impl Serialize for GatewayDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("0s", ms(0)),
            ("250ms", ms(250)),
            ("1s", ms(1_000)),
            ("1m", ms(60_000)),
            ("1h", ms(3_600_000)),
            ("1h30m", ms(5_400_000)),
            ("1m500ms", ms(60_500)),
            ("99999ms", ms(99_999)),
            ("1h1m1s1ms", ms(3_661_001)),
            ("90s", ms(90_000)),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
        for text in [
            "",
            "1",
            "s",
            "1.5s",
            "-1s",
            "1 s",
            "1S",
            "100000s",
            "1d",
            "1us",
            "1h1m1s1ms1h",
            " 1s",
            "1s ",
            "1sms",
            "+1s",
        ] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
        assert!(parse("1.5s").unwrap_err().to_string().contains("250ms"));
    }

    #[test]
    fn format_is_canonical() {
        let ms = Duration::from_millis;
        assert_eq!(format(ms(0)), "0s");
        assert_eq!(format(ms(250)), "250ms");
        assert_eq!(format(ms(90_000)), "1m30s");
        assert_eq!(format(ms(3_600_000)), "1h");
        assert_eq!(format(ms(3_661_001)), "1h1m1s1ms");
        assert_eq!(
            format(Duration::from_secs(400_000 * 3600)),
            "99999h59m59s999ms"
        );
    }
}
