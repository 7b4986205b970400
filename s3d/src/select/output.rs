//! Writing result rows as the request's OutputSerialization asks: CSV (delimiters, quote
//! and escape characters, QuoteFields ALWAYS or ASNEEDED) or JSON objects, each record
//! ended by the RecordDelimiter.

use s3s::dto::OutputSerialization;

use super::error::{Error, Result};
use super::value::Value;

#[derive(Debug, Clone)]
pub(crate) enum Output {
    Csv {
        field: String,
        record: String,
        quote: String,
        escape: String,
        always: bool,
    },
    Json {
        record: String,
    },
}

impl Output {
    pub(crate) fn from_request(o: &OutputSerialization) -> Result<Output> {
        let or = |v: &Option<String>, d: &str| {
            v.clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| d.into())
        };
        match (&o.csv, &o.json) {
            (Some(c), None) => {
                let always = match c.quote_fields.as_ref().map(|q| q.as_str()) {
                    None | Some("ASNEEDED") => false,
                    Some("ALWAYS") => true,
                    Some(other) => {
                        return Err(Error::InvalidRequest(format!(
                            "QuoteFields {other} is not ALWAYS or ASNEEDED"
                        )))
                    }
                };
                let quote = or(&c.quote_character, "\"");
                Ok(Output::Csv {
                    field: or(&c.field_delimiter, ","),
                    record: or(&c.record_delimiter, "\n"),
                    escape: c
                        .quote_escape_character
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| quote.clone()),
                    quote,
                    always,
                })
            }
            (None, Some(j)) => Ok(Output::Json {
                record: or(&j.record_delimiter, "\n"),
            }),
            _ => Err(Error::InvalidRequest(
                "OutputSerialization must name one of CSV or JSON".into(),
            )),
        }
    }

    /// One row: its fields' names (JSON keys) and values.
    pub(crate) fn write<'a>(
        &self,
        fields: impl Iterator<Item = (&'a str, &'a Value)>,
        out: &mut String,
    ) {
        match self {
            Output::Csv {
                field,
                record,
                quote,
                escape,
                always,
            } => {
                for (i, (_, v)) in fields.enumerate() {
                    if i > 0 {
                        out.push_str(field);
                    }
                    let text = v.to_text();
                    let needs = *always
                        || text.contains(field.as_str())
                        || text.contains(quote.as_str())
                        || text.contains(record.as_str())
                        || text.contains(['\n', '\r']);
                    if needs {
                        out.push_str(quote);
                        out.push_str(&text.replace(quote.as_str(), &format!("{escape}{quote}")));
                        out.push_str(quote);
                    } else {
                        out.push_str(&text);
                    }
                }
                out.push_str(record);
            }
            Output::Json { record } => {
                let mut row = Vec::new();
                for (name, v) in fields {
                    row.push((name.to_owned(), v.clone()));
                }
                Value::Struct(row).write_json(out);
                out.push_str(record);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(always: bool) -> Output {
        Output::Csv {
            field: ";".into(),
            record: "\r\n".into(),
            quote: "'".into(),
            escape: "\\".into(),
            always,
        }
    }

    fn row(out: &Output, values: &[Value]) -> String {
        let names: Vec<String> = (1..=values.len()).map(|i| format!("_{i}")).collect();
        let mut s = String::new();
        out.write(names.iter().map(String::as_str).zip(values), &mut s);
        s
    }

    #[test]
    fn csv_quotes_as_needed_or_always() {
        let v = [
            Value::Str("a;b".into()),
            Value::Int(1),
            Value::Null,
            Value::Str("it's".into()),
        ];
        assert_eq!(row(&csv(false), &v), "'a;b';1;;'it\\'s'\r\n");
        assert_eq!(row(&csv(true), &v[1..3]), "'1';''\r\n");
    }

    #[test]
    fn json_objects_leave_missing_fields_out() {
        let out = Output::Json {
            record: "\n".into(),
        };
        let v = [
            Value::Str("x".into()),
            Value::Missing,
            Value::Float(2.0),
            Value::Null,
        ];
        assert_eq!(row(&out, &v), "{\"_1\":\"x\",\"_3\":2.0,\"_4\":null}\n");
    }
}
