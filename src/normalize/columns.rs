//! Column kinds and the `canonical_table!` macro that declares a dataset once: its row
//! struct, its Arrow schema and its batch builder, so the three can never drift apart.

use std::sync::Arc;

use compact_str::CompactString;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder,
    Int64Builder, MapBuilder, MapFieldNames, StringBuilder, StructBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, TimeUnit};

/// Precision and scale of every money column: `Decimal128(18, 6)`.
pub const MONEY_PRECISION: u8 = 18;
/// Scale of money columns (micros).
pub const MONEY_SCALE: i8 = 6;

/// The Arrow type of every money column, in the tables the sources fill and in the metric
/// tables: exact micros, `Decimal128(18, 6)`.
pub fn money_type() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

/// The Arrow type of canonical timestamps.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// How one column kind maps to a Rust value, an Arrow type and a builder.
pub trait ColumnKind {
    /// The value a row holds for this column.
    type Value;
    /// The Arrow builder that collects it.
    type Builder: ArrayBuilder;
    /// The column's Arrow type.
    fn data_type() -> DataType;
    /// Whether the column may hold nulls.
    fn nullable() -> bool;
    /// A builder with room for `capacity` rows.
    fn builder(capacity: usize) -> Self::Builder;
    /// Append one value (copied into the builder: the row keeps its own).
    fn append(builder: &mut Self::Builder, value: &Self::Value);
    /// Bytes of values held so far by a variable-width column (0 for the others).
    fn value_bytes(_builder: &Self::Builder) -> usize {
        0
    }
    /// A builder with room for `capacity` rows and, in a variable-width column, for
    /// `value_bytes` bytes of values.
    fn builder_with_room(capacity: usize, _value_bytes: usize) -> Self::Builder {
        Self::builder(capacity)
    }
}

macro_rules! column_kind {
    (
        $name:ident, $value:ty, $builder:ty, $dt:expr, $nullable:expr, $new:expr,
        |$b:ident, $v:ident| $append:expr
        $(, room: |$rb:ident| $bytes:expr, |$rc:ident, $rn:ident| $room:expr)?
    ) => {
        #[doc = concat!("Column kind `", stringify!($name), "`.")]
        #[derive(Debug)]
        pub struct $name;
        impl ColumnKind for $name {
            type Value = $value;
            type Builder = $builder;
            fn data_type() -> DataType {
                $dt
            }
            fn nullable() -> bool {
                $nullable
            }
            fn builder(capacity: usize) -> Self::Builder {
                $new(capacity)
            }
            fn append($b: &mut Self::Builder, $v: &Self::Value) {
                $append
            }
            $(
                fn value_bytes($rb: &Self::Builder) -> usize {
                    $bytes
                }
                fn builder_with_room($rc: usize, $rn: usize) -> Self::Builder {
                    $room
                }
            )?
        }
    };
}

/// A text column kind (`Utf8`) and its JSON form for `_rejects`: `$value` is the text a row
/// holds (`String` or an inline `CompactString`, read through `Deref<Target = str>`);
/// `optional` when it may be null.
macro_rules! text_kind {
    ($name:ident, $value:ty) => {
        column_kind!(
            $name,
            $value,
            StringBuilder,
            DataType::Utf8,
            false,
            |c| StringBuilder::with_capacity(c, c * 8),
            |b, v| b.append_value(v),
            room: |b| b.values_slice().len(), |c, bytes| StringBuilder::with_capacity(c, bytes)
        );
        impl JsonCell for $name {
            fn json(value: &$value) -> serde_json::Value {
                super::bounds::json_text(value)
            }
        }
    };
    ($name:ident, $value:ty, optional) => {
        column_kind!(
            $name,
            Option<$value>,
            StringBuilder,
            DataType::Utf8,
            true,
            |c| StringBuilder::with_capacity(c, c * 8),
            |b, v| b.append_option(v.as_deref()),
            room: |b| b.values_slice().len(), |c, bytes| StringBuilder::with_capacity(c, bytes)
        );
        impl JsonCell for $name {
            fn json(value: &Option<$value>) -> serde_json::Value {
                value
                    .as_deref()
                    .map_or(serde_json::Value::Null, super::bounds::json_text)
            }
        }
    };
}

text_kind!(Str, String);
text_kind!(OptStr, String, optional);
// Short text held in the row itself, not on the heap: the ids, codes, labels and names of
// `leads`, `spend` and `survey_responses` rows are mostly under 24 bytes, and a `String`
// each cost an allocation when a page was decoded and a free, on another thread, once its
// rows were written (about 2 % of a spend-heavy run's CPU in the allocator, perf). Same
// Arrow type as `Str`/`OptStr`.
text_kind!(SmallStr, CompactString);
text_kind!(OptSmallStr, CompactString, optional);
column_kind!(
    OptI64,
    Option<i64>,
    Int64Builder,
    DataType::Int64,
    true,
    Int64Builder::with_capacity,
    |b, v| b.append_option(*v)
);
column_kind!(
    I64,
    i64,
    Int64Builder,
    DataType::Int64,
    false,
    Int64Builder::with_capacity,
    |b, v| b.append_value(*v)
);
column_kind!(
    F64,
    f64,
    Float64Builder,
    DataType::Float64,
    false,
    Float64Builder::with_capacity,
    |b, v| b.append_value(*v)
);
column_kind!(
    Bool,
    bool,
    BooleanBuilder,
    DataType::Boolean,
    false,
    BooleanBuilder::with_capacity,
    |b, v| b.append_value(*v)
);
column_kind!(
    OptBool,
    Option<bool>,
    BooleanBuilder,
    DataType::Boolean,
    true,
    BooleanBuilder::with_capacity,
    |b, v| b.append_option(*v)
);
column_kind!(
    OptTs,
    Option<i64>,
    TimestampMicrosecondBuilder,
    timestamp_type(),
    true,
    |c| TimestampMicrosecondBuilder::with_capacity(c).with_timezone("UTC"),
    |b, v| b.append_option(*v)
);
column_kind!(
    Money,
    i128,
    Decimal128Builder,
    money_type(),
    false,
    |c| Decimal128Builder::with_capacity(c)
        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
        .expect("18,6 is a valid decimal type"),
    |b, v| b.append_value(*v)
);
column_kind!(
    OptMoney,
    Option<i128>,
    Decimal128Builder,
    money_type(),
    true,
    |c| Decimal128Builder::with_capacity(c)
        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
        .expect("18,6 is a valid decimal type"),
    |b, v| b.append_option(*v)
);
column_kind!(
    Date,
    i32,
    Date32Builder,
    DataType::Date32,
    false,
    Date32Builder::with_capacity,
    |b, v| b.append_value(*v)
);

/// One kept custom CRM property value, typed as the job declares it (see [`Custom`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CustomValue {
    /// A `string` property (picklists and multi-selects as the CRM's text).
    Str(String),
    /// A `number` property. A float, because both CRMs keep number properties as
    /// floating point (Salesforce sends JSON doubles); money has its own decimal columns.
    Number(f64),
    /// A `boolean` property.
    Bool(bool),
    /// A `timestamp` property, µs since the epoch (UTC).
    Timestamp(i64),
}

/// The fields of one `custom` value: one per type, only the declared type's set.
pub fn custom_value_fields() -> Fields {
    Fields::from(vec![
        Field::new("string", DataType::Utf8, true),
        Field::new("number", DataType::Float64, true),
        Field::new("boolean", DataType::Boolean, true),
        Field::new("timestamp", timestamp_type(), true),
    ])
}

/// The type of `leads.custom`: `MAP<VARCHAR, STRUCT<string, number, boolean, timestamp>>`
/// keyed by the property's name in the job. A map rather than a struct of the configured
/// properties, so the table's schema is the same for every job and every source (a
/// struct's shape would change with each job's configuration, and files written before a
/// property was added would no longer match); a struct value rather than a text value, so
/// each property keeps its type.
fn custom_type() -> DataType {
    // Parquet's own names for a map's parts (`key_value`, `key`, `value`).
    let entries = Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Struct(custom_value_fields()), true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

fn custom_builder(capacity: usize) -> MapBuilder<StringBuilder, StructBuilder> {
    let values = StructBuilder::new(
        custom_value_fields(),
        vec![
            Box::new(StringBuilder::with_capacity(capacity, capacity * 4)),
            Box::new(Float64Builder::with_capacity(capacity)),
            Box::new(BooleanBuilder::with_capacity(capacity)),
            Box::new(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC")),
        ],
    );
    MapBuilder::with_capacity(
        Some(MapFieldNames {
            entry: "key_value".into(),
            key: "key".into(),
            value: "value".into(),
        }),
        StringBuilder::with_capacity(capacity, capacity * 8),
        values,
        capacity,
    )
    .with_values_field(Field::new(
        "value",
        DataType::Struct(custom_value_fields()),
        true,
    ))
}

fn append_custom(
    builder: &mut MapBuilder<StringBuilder, StructBuilder>,
    entries: &[(String, CustomValue)],
) {
    for (name, value) in entries {
        builder.keys().append_value(name);
        let values = builder.values();
        let (mut s, mut n, mut b, mut t) = (None, None, None, None);
        match value {
            CustomValue::Str(v) => s = Some(v.as_str()),
            CustomValue::Number(v) => n = Some(*v),
            CustomValue::Bool(v) => b = Some(*v),
            CustomValue::Timestamp(v) => t = Some(*v),
        }
        // The builders were made above in this order and types: the casts cannot fail.
        if let Some(f) = values.field_builder::<StringBuilder>(0) {
            f.append_option(s);
        }
        if let Some(f) = values.field_builder::<Float64Builder>(1) {
            f.append_option(n);
        }
        if let Some(f) = values.field_builder::<BooleanBuilder>(2) {
            f.append_option(b);
        }
        if let Some(f) = values.field_builder::<TimestampMicrosecondBuilder>(3) {
            f.append_option(t);
        }
        values.append(true);
    }
    builder
        .append(true)
        .expect("keys and values are appended in pairs");
}

column_kind!(
    Custom,
    Vec<(String, CustomValue)>,
    MapBuilder<StringBuilder, StructBuilder>,
    custom_type(),
    // Rows always hold a map (empty when nothing is kept); null only in rows carried over
    // from files written before the column existed.
    true,
    custom_builder,
    |b, v| append_custom(b, v)
);

/// A column value as JSON, for `_rejects.record` (timestamps and dates as text, money as
/// an exact decimal string, long text cut).
pub(super) trait JsonCell: ColumnKind {
    /// `value` as JSON.
    fn json(value: &Self::Value) -> serde_json::Value;
}

fn ts_json(micros: i64) -> serde_json::Value {
    chrono::DateTime::from_timestamp_micros(micros).map_or_else(
        || serde_json::Value::from(micros),
        |t| serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
    )
}

impl JsonCell for OptI64 {
    fn json(value: &Option<i64>) -> serde_json::Value {
        serde_json::Value::from(*value)
    }
}
impl JsonCell for I64 {
    fn json(value: &i64) -> serde_json::Value {
        serde_json::Value::from(*value)
    }
}
impl JsonCell for F64 {
    fn json(value: &f64) -> serde_json::Value {
        serde_json::Value::from(*value)
    }
}
impl JsonCell for Bool {
    fn json(value: &bool) -> serde_json::Value {
        serde_json::Value::from(*value)
    }
}
impl JsonCell for OptBool {
    fn json(value: &Option<bool>) -> serde_json::Value {
        serde_json::Value::from(*value)
    }
}
impl JsonCell for OptTs {
    fn json(value: &Option<i64>) -> serde_json::Value {
        value.map_or(serde_json::Value::Null, ts_json)
    }
}
impl JsonCell for Money {
    fn json(value: &i128) -> serde_json::Value {
        serde_json::Value::String(super::bounds::money_text(*value))
    }
}
impl JsonCell for OptMoney {
    fn json(value: &Option<i128>) -> serde_json::Value {
        value.map_or(serde_json::Value::Null, |v| {
            serde_json::Value::String(super::bounds::money_text(v))
        })
    }
}
impl JsonCell for Custom {
    fn json(value: &Vec<(String, CustomValue)>) -> serde_json::Value {
        let object = value
            .iter()
            .map(|(name, v)| {
                let v = match v {
                    CustomValue::Str(s) => super::bounds::json_text(s),
                    CustomValue::Number(n) => serde_json::Value::from(*n),
                    CustomValue::Bool(b) => serde_json::Value::from(*b),
                    CustomValue::Timestamp(t) => ts_json(*t),
                };
                (name.clone(), v)
            })
            .collect();
        serde_json::Value::Object(object)
    }
}
impl JsonCell for Date {
    fn json(value: &i32) -> serde_json::Value {
        ts_json(i64::from(*value) * 86_400 * 1_000_000)
            .as_str()
            .and_then(|t| t.get(..10))
            .map_or(serde_json::Value::from(*value), serde_json::Value::from)
    }
}

/// The run context stamped on every row: `_run_id` and `_ingested_at`.
#[derive(Debug, Clone)]
pub struct BatchStamp {
    /// The run that wrote the row.
    pub run_id: String,
    /// When the run started, in microseconds since the epoch (UTC).
    pub ingested_at_micros: i64,
}

impl BatchStamp {
    /// The two lineage columns for `rows` rows.
    pub fn columns(&self, rows: usize) -> [ArrayRef; 2] {
        let run_ids: arrow::array::StringArray =
            std::iter::repeat_n(Some(self.run_id.as_str()), rows).collect();
        let ingested = TimestampMicrosecondArray::from(vec![self.ingested_at_micros; rows])
            .with_timezone("UTC");
        [Arc::new(run_ids), Arc::new(ingested)]
    }

    /// The two lineage fields.
    pub fn fields() -> [arrow::datatypes::Field; 2] {
        [
            arrow::datatypes::Field::new("_run_id", DataType::Utf8, false),
            arrow::datatypes::Field::new("_ingested_at", timestamp_type(), false),
        ]
    }
}

/// What every dataset builder offers the pipeline, whatever its row type.
pub trait TableRows {
    /// The row type sources decode into, with its plausibility rules.
    type Row: super::bounds::Plausible;
    /// Append one fully decoded row (a row is decoded whole first, so a bad record never
    /// leaves half a row behind). Its values are copied: the caller keeps the row, and
    /// chooses where its memory is given back.
    fn push(&mut self, row: &Self::Row);
    /// Rows buffered so far.
    fn len(&self) -> usize;
    /// Nothing buffered?
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Take the buffered rows as a batch, stamped with the run's lineage columns.
    fn finish(&mut self, stamp: &BatchStamp) -> arrow::record_batch::RecordBatch;
    /// Bytes of values each column holds so far, in column order (0 for fixed-width
    /// columns): what the next builder of like rows can be sized by.
    fn value_bytes(&self) -> Vec<usize>;
    /// A builder for `rows` rows with room, in each variable-width column, for
    /// `value_bytes[i]` bytes of values; without them, for a guess of 8 bytes a value (a
    /// column then grows by doubling, copying what it holds each time).
    fn with_room(rows: usize, value_bytes: Option<&[usize]>) -> Self
    where
        Self: Sized;
}

/// Declare a canonical dataset: row struct, schema function and builder.
macro_rules! canonical_table {
    (
        $(#[$meta:meta])*
        $row:ident, $builder:ident, $schema_fn:ident {
            $( $(#[$fmeta:meta])* $field:ident : $kind:ident ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $row {
            $( $(#[$fmeta])* pub $field: <$crate::normalize::columns::$kind as $crate::normalize::columns::ColumnKind>::Value, )+
        }

        impl $crate::normalize::bounds::RowJson for $row {
            fn to_json(&self) -> serde_json::Value {
                use $crate::normalize::columns::JsonCell;
                let mut object = serde_json::Map::new();
                $( object.insert(
                    stringify!($field).to_string(),
                    $crate::normalize::columns::$kind::json(&self.$field),
                ); )+
                serde_json::Value::Object(object)
            }
        }

        /// The dataset's Arrow schema, lineage columns last.
        pub fn $schema_fn() -> arrow::datatypes::SchemaRef {
            use $crate::normalize::columns::ColumnKind;
            let mut fields = vec![
                $( arrow::datatypes::Field::new(
                    stringify!($field),
                    $crate::normalize::columns::$kind::data_type(),
                    $crate::normalize::columns::$kind::nullable(),
                ), )+
            ];
            fields.extend($crate::normalize::columns::BatchStamp::fields());
            std::sync::Arc::new(arrow::datatypes::Schema::new(fields))
        }

        /// Collects rows column by column into Arrow builders.
        #[derive(Debug)]
        pub struct $builder {
            rows: usize,
            $( $field: <$crate::normalize::columns::$kind as $crate::normalize::columns::ColumnKind>::Builder, )+
        }

        impl $builder {
            /// A builder sized for `capacity` rows per batch.
            pub fn new(capacity: usize) -> Self {
                use $crate::normalize::columns::ColumnKind;
                Self {
                    rows: 0,
                    $( $field: $crate::normalize::columns::$kind::builder(capacity), )+
                }
            }
        }

        impl $crate::normalize::columns::TableRows for $builder {
            type Row = $row;

            fn push(&mut self, row: &$row) {
                use $crate::normalize::columns::ColumnKind;
                $( $crate::normalize::columns::$kind::append(&mut self.$field, &row.$field); )+
                self.rows += 1;
            }

            fn len(&self) -> usize {
                self.rows
            }

            fn value_bytes(&self) -> Vec<usize> {
                use $crate::normalize::columns::ColumnKind;
                vec![ $( $crate::normalize::columns::$kind::value_bytes(&self.$field), )+ ]
            }

            fn with_room(rows: usize, value_bytes: Option<&[usize]>) -> Self {
                use $crate::normalize::columns::ColumnKind;
                let Some(value_bytes) = value_bytes else {
                    return Self::new(rows);
                };
                // Fields are built in the order written, which is the columns' order.
                let mut room = value_bytes.iter().copied();
                Self {
                    rows: 0,
                    $( $field: $crate::normalize::columns::$kind::builder_with_room(
                        rows,
                        room.next().unwrap_or(0),
                    ), )+
                }
            }

            fn finish(&mut self, stamp: &$crate::normalize::columns::BatchStamp) -> arrow::record_batch::RecordBatch {
                let rows = std::mem::take(&mut self.rows);
                let mut columns: Vec<arrow::array::ArrayRef> = vec![
                    $( arrow::array::ArrayBuilder::finish(&mut self.$field), )+
                ];
                columns.extend(stamp.columns(rows));
                arrow::record_batch::RecordBatch::try_new($schema_fn(), columns)
                    .expect("builders follow the declared schema")
            }
        }
    };
}

pub(crate) use canonical_table;
