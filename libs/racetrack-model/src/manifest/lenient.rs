//! Scalar coercions the original schema (pydantic 1) applied while parsing: a number or boolean
//! where text is expected becomes its Python `str()`, and a replica count may be written as text.
//! Without them, manifests the original accepted (`runtime_env: {PORT: 8080}`) would be refused.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;

/// Text as the original would have stored it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Text(pub(super) String);

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
        Ok(Text(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
        Ok(Text(if v { "True" } else { "False" }.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
        Ok(Text(python_float_str(v)))
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

/// Python's `repr(float)`: shortest round-trip digits, positional between 1e-4 and 1e16, a
/// trailing `.0` on whole numbers and a signed two-digit exponent otherwise.
pub(super) fn python_float_str(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let scientific = format!("{v:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if v != 0.0 && !(-4..16).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs());
    }
    let positional = format!("{v}");
    if positional.contains('.') {
        positional
    } else {
        format!("{positional}.0")
    }
}

pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Text::deserialize(d).map(|t| t.0)
}

pub(super) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<Text>::deserialize(d).map(|o| o.map(|t| t.0))
}

pub(super) fn opt_string_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    Option::<Vec<Text>>::deserialize(d)
        .map(|o| o.map(|items| items.into_iter().map(|t| t.0).collect()))
}

pub(super) fn opt_string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    Option::<BTreeMap<Text, Text>>::deserialize(d)
        .map(|o| o.map(|map| map.into_iter().map(|(k, v)| (k.0, v.0)).collect()))
}

pub(super) fn opt_value_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, serde_json::Value>>, D::Error> {
    Option::<BTreeMap<Text, serde_json::Value>>::deserialize(d)
        .map(|o| o.map(|map| map.into_iter().map(|(k, v)| (k.0, v)).collect()))
}

struct CountVisitor;

const COUNT_EXPECTED: &str = "a whole number from 0 to 4294967295";

impl Visitor<'_> for CountVisitor {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(COUNT_EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        u32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &COUNT_EXPECTED))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        u32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &COUNT_EXPECTED))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u32, E> {
        let whole = v.is_finite() && v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v);
        if whole {
            // Exact: `v` is a whole number within u32's range.
            Ok(v as u32)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &COUNT_EXPECTED))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
        v.trim()
            .parse::<u32>()
            .map_err(|_| E::invalid_value(Unexpected::Str(v), &COUNT_EXPECTED))
    }
}

/// A count written as an integer, a whole float (`2.0`) or digits in a string (`"2"`).
pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    d.deserialize_any(CountVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_render_like_python() {
        let cases = [
            (1.1, "1.1"),
            (2.0, "2.0"),
            (-3.0, "-3.0"),
            (0.0, "0.0"),
            (0.5, "0.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e100, "1.2345e+100"),
            (123.456, "123.456"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float_str(value), expected, "{value}");
        }
        assert_eq!(python_float_str(f64::NAN), "nan");
    }

    #[test]
    fn scalars_become_text() {
        let text = |json: &str| string(&serde_json::from_str::<serde_json::Value>(json).unwrap());
        assert_eq!(text("\"x\"").unwrap(), "x");
        assert_eq!(text("8080").unwrap(), "8080");
        assert_eq!(text("-1").unwrap(), "-1");
        assert_eq!(text("true").unwrap(), "True");
        assert_eq!(text("1.5").unwrap(), "1.5");
        assert!(text("null").is_err());
        assert!(text("[1]").is_err());
        assert!(text("{}").is_err());
    }

    #[test]
    fn counts() {
        let n = |json: &str| count(&serde_json::from_str::<serde_json::Value>(json).unwrap());
        assert_eq!(n("3").unwrap(), 3);
        assert_eq!(n("3.0").unwrap(), 3);
        assert_eq!(n("\" 3 \"").unwrap(), 3);
        for bad in [
            "-1",
            "3.5",
            "\"three\"",
            "true",
            "null",
            "4294967296",
            "1e300",
        ] {
            assert!(n(bad).is_err(), "{bad}");
        }
    }
}
