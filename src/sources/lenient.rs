//! Borrowed page shapes that read a body the way `serde_json::Value` lookups (`get`,
//! `pointer`, `as_array`) saw it, without building the tree: [`lenient_object!`] declares a
//! struct of optional members (the last of a repeated member wins, unknown members are
//! skipped, anything but an object reads as no members), and [`RawRecords`] keeps the
//! records of an array as raw JSON slices, each read on its own ([`read_each`]) and
//! decoded into a row or a reject ([`decode_each`]: a rejected record is parsed into a
//! `Value` for `_rejects`, and only it). A vendor's odd page therefore meets
//! the same rules, and the same reject reasons, as when it was walked as a `Value`.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::DecodedPage;
use crate::normalize::scalar::Key;

/// A struct read member by member from a JSON object (see [`lenient_object!`]).
pub(crate) trait Members<'de>: Default {
    /// Read `key`'s value from `map` when it is a member of ours; `false` leaves it unread.
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// Deserialize a [`Members`] struct: an object's members, or none for any other value.
pub(crate) fn object<'de, T: Members<'de>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(ObjectVisitor(PhantomData))
}

/// The visitor methods for every value that is not the shape wanted: consumed, and read
/// as `$none` (a lookup into a string, a number or `null` finds nothing). Name the
/// visitor's lifetime, then `$none`, then which of `seq` and `map` to skip as well.
macro_rules! anything_else_is {
    ($de:lifetime, $none:expr $(, $skip:ident)*) => {
        fn visit_unit<E: serde::de::Error>(self) -> ::std::result::Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> ::std::result::Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> ::std::result::Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> ::std::result::Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> ::std::result::Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> ::std::result::Result<Self::Value, E> {
            Ok($none)
        }
        $($crate::sources::lenient::anything_else_is!(@$skip $de, $none);)*
    };
    (@seq $de:lifetime, $none:expr) => {
        fn visit_seq<A: serde::de::SeqAccess<$de>>(
            self,
            mut seq: A,
        ) -> ::std::result::Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok($none)
        }
    };
    (@map $de:lifetime, $none:expr) => {
        fn visit_map<A: serde::de::MapAccess<$de>>(
            self,
            mut map: A,
        ) -> ::std::result::Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok($none)
        }
    };
}
pub(crate) use anything_else_is;

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Members<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut out = T::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if !out.member(&key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }

    anything_else_is!('de, T::default(), seq);
}

/// The records of a member that should be an array, each kept as its raw JSON; `None`
/// when the member is anything else.
#[derive(Debug, Default)]
pub(crate) struct RawRecords<'a>(pub Option<Vec<&'a RawValue>>);

struct RawRecordsVisitor;

impl<'de> Visitor<'de> for RawRecordsVisitor {
    type Value = RawRecords<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(record) = seq.next_element::<&'de RawValue>()? {
            records.push(record);
        }
        Ok(RawRecords(Some(records)))
    }

    anything_else_is!('de, RawRecords(None), map);
}

impl<'de> serde::Deserialize<'de> for RawRecords<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawRecordsVisitor)
    }
}

/// Each raw record read as `T`, kept with its raw JSON. `T` is a lenient shape (any JSON
/// value reads as one), so a record of a page that parsed does not fail to read; if one
/// did, it would read as `T::default()`: no members, rejected by the decoding.
pub(crate) fn read_each<'a, T: serde::Deserialize<'a> + Default>(
    records: Vec<&'a RawValue>,
) -> impl Iterator<Item = (&'a RawValue, T)> {
    records
        .into_iter()
        .map(|raw| (raw, serde_json::from_str(raw.get()).unwrap_or_default()))
}

/// Decode each record with `decode`: the rows, and each record it rejects as the `Value`
/// `_rejects` keeps, with why (only a rejected record is parsed into a `Value`); `next` is
/// what the source's paging reads next.
pub(crate) fn decode_each<T, R, N>(
    records: &[(&RawValue, T)],
    next: N,
    decode: impl Fn(&T) -> Result<R, String>,
) -> DecodedPage<R, N> {
    let mut page = DecodedPage {
        rows: Vec::with_capacity(records.len()),
        rejects: Vec::new(),
        next,
    };
    for (raw, record) in records {
        match decode(record) {
            Ok(row) => page.rows.push(row),
            Err(reason) => page.rejects.push((record_value(raw), reason)),
        }
    }
    page
}

/// A rejected record as the `Value` `_rejects` keeps (the record was valid JSON inside a
/// page that parsed, so this does not fail in practice; if it did, the text is kept).
fn record_value(record: &RawValue) -> serde_json::Value {
    serde_json::from_str(record.get())
        .unwrap_or_else(|_| serde_json::Value::String(record.get().to_string()))
}

/// Declares a struct of borrowed, optional members read from a JSON object as `Value`
/// lookups see it: `Some` for a member present (even `null`), the last of a repeated
/// member, unknown members skipped, and no members at all when the value is not an
/// object. Each line maps a JSON member name to a field: `"currencyCode" => currency: T,`
/// (the field is an `Option<T>`).
macro_rules! lenient_object {
    (
        $(#[$meta:meta])*
        struct $name:ident<$lt:lifetime> {
            $($(#[$fmeta:meta])* $key:literal => $field:ident: $ty:ty,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        struct $name<$lt> {
            $($(#[$fmeta])* $field: Option<$ty>,)+
        }

        impl<$lt> $crate::sources::lenient::Members<$lt> for $name<$lt> {
            fn member<A: serde::de::MapAccess<$lt>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> ::std::result::Result<bool, A::Error> {
                match key {
                    $($key => self.$field = Some(map.next_value()?),)+
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }

        impl<$lt> serde::Deserialize<$lt> for $name<$lt> {
            fn deserialize<D: serde::Deserializer<$lt>>(d: D) -> ::std::result::Result<Self, D::Error> {
                $crate::sources::lenient::object(d)
            }
        }
    };
}
pub(crate) use lenient_object;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::parse::Scalar;

    lenient_object! {
        /// A test shape: `a`, and `b` holding `c`.
        struct Outer<'a> {
            "a" => a: Scalar<'a>,
            "b" => b: Inner<'a>,
            "rows" => rows: RawRecords<'a>,
        }
    }

    lenient_object! {
        /// `c`.
        struct Inner<'a> {
            "c" => c: Scalar<'a>,
        }
    }

    fn parse(text: &str) -> Outer<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn members_are_read_as_value_lookups_see_them() {
        let o = parse(r#"{"a":"x\"y","z":{"deep":[1,{"c":2}]},"b":{"c":"kept"},"a":null}"#);
        // The last of a repeated member, and a `null` is present.
        assert_eq!(o.a, Some(Scalar::Null));
        assert_eq!(
            o.b.and_then(|b| b.c).as_ref().and_then(Scalar::as_str),
            Some("kept")
        );
        assert!(o.rows.is_none());
        // Not an object: no members, wherever it stands.
        for other in ["3", "\"s\"", "null", "[{\"a\":1}]", "true"] {
            let o = parse(other);
            assert!(o.a.is_none() && o.b.is_none(), "{other}");
            let text = format!("{{\"b\":{other}}}");
            let nested = parse(&text);
            assert!(nested.b.is_some_and(|b| b.c.is_none()), "{other}");
        }
    }

    #[test]
    fn records_stay_raw_and_non_arrays_are_none() {
        let o = parse(r#"{"rows":[{"a":1}, 7, "t", [1,2], null]}"#);
        let rows = o.rows.and_then(|r| r.0).unwrap();
        let texts: Vec<&str> = rows.iter().map(|r| r.get()).collect();
        assert_eq!(texts, ["{\"a\":1}", "7", "\"t\"", "[1,2]", "null"]);
        assert_eq!(record_value(rows[0]), serde_json::json!({"a": 1}));
        for other in ["null", "{\"x\":[1]}", "\"[]\"", "5"] {
            let text = format!("{{\"rows\":{other}}}");
            let o = parse(&text);
            assert!(o.rows.is_some_and(|r| r.0.is_none()), "{other}");
        }
    }
}
