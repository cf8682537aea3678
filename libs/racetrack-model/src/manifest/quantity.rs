use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::lenient::python_float_str;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("invalid quantity {0:?}: use <number><suffix>, e.g. 256Mi, 1.5G or 100m")]
    Format(String),
    #[error(
        "invalid quantity {text:?}: unknown suffix {suffix:?}, use one of: {}",
        SUFFIX_NAMES
    )]
    Suffix { text: String, suffix: String },
    #[error("invalid quantity {0:?}: the number is too large")]
    TooLarge(String),
}

/// An amount of memory (bytes) or CPU (cores) written the Kubernetes way: `256Mi`, `1.5G`, `100m`.
///
/// Keeps the text as written, which is what gets stored and sent on; compares (and is equal) by
/// the plain number it denotes, so `1Gi == 1024Mi`.
#[derive(Debug, Clone)]
pub struct Quantity {
    text: String,
    base: f64,
    suffix_len: usize,
    value: f64,
}

const SUFFIXES: &[(&str, f64)] = &[
    ("E", 1e18),
    ("P", 1e15),
    ("T", 1e12),
    ("G", 1e9),
    ("M", 1e6),
    ("k", 1e3),
    ("", 1.0),
    ("m", 1e-3),
    ("u", 1e-6),
    ("n", 1e-9),
    ("p", 1e-12),
    ("Ei", 1_152_921_504_606_846_976.0),
    ("Pi", 1_125_899_906_842_624.0),
    ("Ti", 1_099_511_627_776.0),
    ("Gi", 1_073_741_824.0),
    ("Mi", 1_048_576.0),
    ("Ki", 1024.0),
];

const SUFFIX_NAMES: &str = "E, P, T, G, M, k, (none), m, u, n, p, Ei, Pi, Ti, Gi, Mi, Ki";

/// Length of the leading `digits[.digits]`, or `None` when the text does not start that way.
fn number_len(text: &str) -> Option<usize> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let whole = digits(text);
    if whole == 0 {
        return None;
    }
    let rest = &text[whole..];
    match rest.strip_prefix('.') {
        Some(after_dot) if digits(after_dot) > 0 => Some(whole + 1 + digits(after_dot)),
        _ => Some(whole),
    }
}

impl Quantity {
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let len = number_len(text).ok_or_else(|| QuantityError::Format(text.to_string()))?;
        let (number, suffix) = text.split_at(len);
        let multiplier = SUFFIXES
            .iter()
            .find(|(s, _)| *s == suffix)
            .map(|(_, m)| *m)
            .ok_or_else(|| QuantityError::Suffix {
                text: text.to_string(),
                suffix: suffix.to_string(),
            })?;
        let base: f64 = number
            .parse()
            .map_err(|_| QuantityError::Format(text.to_string()))?;
        let value = base * multiplier;
        if !value.is_finite() {
            return Err(QuantityError::TooLarge(text.to_string()));
        }
        Ok(Quantity {
            text: text.to_string(),
            base,
            suffix_len: suffix.len(),
            value,
        })
    }

    /// The plain number: bytes for memory, cores for CPU.
    pub fn value(&self) -> f64 {
        self.value
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn suffix(&self) -> &str {
        &self.text[self.text.len() - self.suffix_len..]
    }

    /// Whether the amount is non-zero; an explicit `0` counts as "not set" for infrastructure.
    pub fn is_positive(&self) -> bool {
        self.base > 0.0
    }

    /// Splits the amount (e.g. across containers) keeping the suffix: `1Gi / 2 == 0.5Gi`.
    pub fn divide(&self, divisor: f64) -> Result<Quantity, QuantityError> {
        let base = self.base / divisor;
        let number = if base.fract() == 0.0 && base.abs() < 1e16 {
            format!("{base:.0}")
        } else {
            python_float_str(base)
        };
        Quantity::parse(&format!("{number}{}", self.suffix()))
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

// Values are always finite and non-negative, so the float order is total.
impl Eq for Quantity {}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.total_cmp(&other.value)
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

struct QuantityVisitor;

impl Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a quantity such as 256Mi, 1.5G or 100m")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
        Quantity::parse(v).map_err(E::custom)
    }

    // Bare numbers are quantities without a suffix, as the original read them via `str()`.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
        self.visit_str(&python_float_str(v))
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(QuantityVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn every_suffix() {
        let cases = [
            ("1E", 1e18),
            ("1P", 1e15),
            ("1T", 1e12),
            ("1G", 1e9),
            ("1M", 1e6),
            ("1k", 1e3),
            ("1", 1.0),
            ("1m", 1e-3),
            ("1u", 1e-6),
            ("1n", 1e-9),
            ("1p", 1e-12),
            ("1Ei", 1024f64.powi(6)),
            ("1Pi", 1024f64.powi(5)),
            ("1Ti", 1024f64.powi(4)),
            ("1Gi", 1024f64.powi(3)),
            ("1Mi", 1024f64.powi(2)),
            ("1Ki", 1024.0),
        ];
        for (text, value) in cases {
            assert_eq!(q(text).value(), value, "{text}");
        }
        assert_eq!(q("256Mi").value(), 268_435_456.0);
        assert_eq!(q("100m").value(), 0.1);
        assert_eq!(q("1.5").value(), 1.5);
        assert_eq!(q("0.129G").value(), 129e6);
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "", "Mi", "-1", ".5", "1.", "1.2.3", "1 Gi", " 1", "1Zi", "1gi", "1K", "1e3", "1Gi\n",
            "١",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Quantity::parse("1Zi"),
            Err(QuantityError::Suffix { .. })
        ));
        assert!(matches!(
            Quantity::parse("x"),
            Err(QuantityError::Format(_))
        ));
        assert!(matches!(
            Quantity::parse(&"9".repeat(400)),
            Err(QuantityError::TooLarge(_))
        ));
        assert!(Quantity::parse("1Zi")
            .unwrap_err()
            .to_string()
            .contains("\"1Zi\""));
    }

    #[test]
    fn compares_by_value_and_keeps_text() {
        assert!(q("1Gi") > q("1G"));
        assert!(q("500m") < q("1"));
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("1024Mi").to_string(), "1024Mi");
        assert_eq!(q("1.50G").as_str(), "1.50G");
        assert_eq!(q("256Mi").suffix(), "Mi");
        assert_eq!(q("12").suffix(), "");
        assert!(q("1m").is_positive());
        assert!(!q("0Gi").is_positive());
    }

    #[test]
    fn division_keeps_the_suffix() {
        assert_eq!(q("1Gi").divide(2.0).unwrap().as_str(), "0.5Gi");
        assert_eq!(q("4Gi").divide(2.0).unwrap().as_str(), "2Gi");
        assert_eq!(q("1000m").divide(4.0).unwrap().as_str(), "250m");
        assert!(q("1").divide(100000.0).is_err(), "1e-05 is not a quantity");
    }

    #[test]
    fn serde_uses_the_text() {
        assert_eq!(serde_json::to_string(&q("256Mi")).unwrap(), "\"256Mi\"");
        let from_number: Quantity = serde_json::from_str("2").unwrap();
        assert_eq!(from_number.as_str(), "2");
        let from_float: Quantity = serde_json::from_str("0.5").unwrap();
        assert_eq!(from_float.as_str(), "0.5");
        let err = serde_json::from_str::<Quantity>("\"1Zi\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("1Zi"), "{err}");
        assert!(serde_json::from_str::<Quantity>("true").is_err());
        assert!(serde_json::from_str::<Quantity>("-1").is_err());
    }
}
