//! Enums that travel as fixed strings (DB columns, JSON, token claims) share one shape: a list of
//! every value, `as_str`, `Display` and a `FromStr` whose error lists what would have been valid.

use std::fmt;

/// A string that is not one of an enum's wire values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}; valid values: {}", .expected.join(", "))]
pub struct ParseEnumError {
    pub kind: &'static str,
    pub value: String,
    pub expected: Vec<&'static str>,
}

pub(crate) fn display_wire(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str(s)
}

/// Declares `ALL`, `as_str`, `Display` and `FromStr` for a fieldless enum from one table of
/// `Variant => "wire"` pairs, so the strings cannot drift apart between the impls.
macro_rules! wire_enum {
    ($ty:ident, $kind:literal, { $($variant:ident => $wire:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $wire),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::wire::display_wire(f, self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::wire::ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($ty::$variant),)+
                    _ => Err($crate::wire::ParseEnumError {
                        kind: $kind,
                        value: s.to_string(),
                        expected: vec![$($wire),+],
                    }),
                }
            }
        }

        $crate::wire::wire_enum_sql!($ty);
    };
}

/// Stores a wire enum in a text column as its wire value; a stored value the enum does not know is
/// a deserialization error naming it (never a panic, never a silent default).
#[cfg(feature = "diesel")]
macro_rules! wire_enum_sql {
    ($ty:ident) => {
        impl<DB> ::diesel::serialize::ToSql<::diesel::sql_types::Text, DB> for $ty
        where
            DB: ::diesel::backend::Backend,
            str: ::diesel::serialize::ToSql<::diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut ::diesel::serialize::Output<'b, '_, DB>,
            ) -> ::diesel::serialize::Result {
                <str as ::diesel::serialize::ToSql<::diesel::sql_types::Text, DB>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl<DB> ::diesel::deserialize::FromSql<::diesel::sql_types::Text, DB> for $ty
        where
            DB: ::diesel::backend::Backend,
            String: ::diesel::deserialize::FromSql<::diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> ::diesel::deserialize::Result<Self> {
                let text = <String as ::diesel::deserialize::FromSql<
                    ::diesel::sql_types::Text,
                    DB,
                >>::from_sql(bytes)?;
                Ok(text.parse::<$ty>()?)
            }
        }
    };
}

#[cfg(not(feature = "diesel"))]
macro_rules! wire_enum_sql {
    ($ty:ident) => {};
}

pub(crate) use wire_enum;
pub(crate) use wire_enum_sql;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lists_valid_values() {
        let err = ParseEnumError {
            kind: "colour",
            value: "mauve".into(),
            expected: vec!["red", "green"],
        };
        assert_eq!(
            err.to_string(),
            "unknown colour \"mauve\"; valid values: red, green"
        );
    }
}
