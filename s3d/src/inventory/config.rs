//! An inventory configuration checked as AWS checks it, and kept as a typed record
//! (JSON in a bucket attribute): the S3 XML it came from is rebuilt from it for Get
//! and List, so what is stored is exactly what a run acts on.

use super::fields::Field;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Result};
use serde::{Deserialize, Serialize};

/// AWS's limit on inventory configurations per bucket.
pub(crate) const MAX_CONFIGS: usize = 1000;
/// AWS's limit on an Id's length.
const MAX_ID_CHARS: usize = 64;
/// The only ARN form a destination bucket may take.
const ARN_PREFIX: &str = "arn:aws:s3:::";

/// One inventory configuration of a bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Inventory {
    pub id: String,
    pub enabled: bool,
    /// Only keys starting with it (the Filter's Prefix).
    pub prefix: Option<String>,
    /// IncludedObjectVersions All (else Current).
    pub all_versions: bool,
    /// The OptionalFields, in the order of AWS's columns.
    pub fields: Vec<Field>,
    pub weekly: bool,
    pub format: Format,
    pub destination: Destination,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Format {
    Csv,
    Parquet,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Destination {
    /// The bucket's name (its ARN without `arn:aws:s3:::`).
    pub bucket: String,
    pub prefix: Option<String>,
    /// Kept to be shown back; this server has one account.
    pub account_id: Option<String>,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Csv => InventoryFormat::CSV,
            Format::Parquet => InventoryFormat::PARQUET,
        }
    }
}

fn invalid(msg: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, msg.to_string())
}

fn malformed() -> S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

/// AWS's answer for a destination that is not a bucket here.
pub(crate) fn bad_destination(msg: &str) -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("InvalidS3DestinationBucket".into()),
        msg.to_string(),
    );
    e.set_status_code(hyper::StatusCode::BAD_REQUEST);
    e
}

/// Check a configuration PUT under `query_id` (the destination bucket's existence is
/// checked by the caller, which has the store).
pub(crate) fn check(query_id: &str, c: InventoryConfiguration) -> S3Result<Inventory> {
    if c.id != query_id {
        return Err(invalid(
            "Configuration Id in the request body does not match the id in the query string",
        ));
    }
    check_id(&c.id)?;
    let d = c.destination.s3_bucket_destination;
    if d.encryption.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "Encrypted inventory reports are not available: set default encryption on the destination bucket's objects instead"
        ));
    }
    let format = match d.format.as_str() {
        InventoryFormat::CSV => Format::Csv,
        InventoryFormat::PARQUET => Format::Parquet,
        InventoryFormat::ORC => {
            return Err(s3_error!(
                NotImplemented,
                "ORC inventory reports are not available: use CSV or Parquet"
            ))
        }
        _ => return Err(malformed()),
    };
    let Some(bucket) = d.bucket.strip_prefix(ARN_PREFIX) else {
        return Err(bad_destination(
            "The destination bucket must be an ARN of the form arn:aws:s3:::BUCKET",
        ));
    };
    if bucket.is_empty() || bucket.contains(['/', ':']) {
        return Err(bad_destination("Invalid bucket ARN"));
    }
    let weekly = match c.schedule.frequency.as_str() {
        InventoryFrequency::DAILY => false,
        InventoryFrequency::WEEKLY => true,
        _ => return Err(malformed()),
    };
    let all_versions = match c.included_object_versions.as_str() {
        InventoryIncludedObjectVersions::ALL => true,
        InventoryIncludedObjectVersions::CURRENT => false,
        _ => return Err(malformed()),
    };
    let mut fields = Vec::new();
    for f in c.optional_fields.unwrap_or_default() {
        let field = Field::optional(f.as_str())?;
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    fields.sort();
    Ok(Inventory {
        id: c.id,
        enabled: c.is_enabled,
        prefix: c.filter.map(|f| f.prefix).filter(|p| !p.is_empty()),
        all_versions,
        fields,
        weekly,
        format,
        destination: Destination {
            bucket: bucket.to_string(),
            prefix: d.prefix.filter(|p| !p.is_empty()),
            account_id: d.account_id,
        },
    })
}

/// Ids are 1 to 64 letters, digits, `-`, `_` and `.` (they become part of report keys).
pub(crate) fn check_id(id: &str) -> S3Result<()> {
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    match ok {
        true => Ok(()),
        false => Err(invalid(
            "The Id must be 1 to 64 letters, digits, '-', '_' or '.'",
        )),
    }
}

impl Inventory {
    /// The S3 document this configuration is shown as.
    pub(crate) fn to_dto(&self) -> InventoryConfiguration {
        InventoryConfiguration {
            destination: InventoryDestination {
                s3_bucket_destination: InventoryS3BucketDestination {
                    account_id: self.destination.account_id.clone(),
                    bucket: format!("{ARN_PREFIX}{}", self.destination.bucket),
                    encryption: None,
                    format: InventoryFormat::from_static(self.format.name()),
                    prefix: self.destination.prefix.clone(),
                },
            },
            filter: self.prefix.clone().map(|prefix| InventoryFilter { prefix }),
            id: self.id.clone(),
            included_object_versions: InventoryIncludedObjectVersions::from_static(
                match self.all_versions {
                    true => InventoryIncludedObjectVersions::ALL,
                    false => InventoryIncludedObjectVersions::CURRENT,
                },
            ),
            is_enabled: self.enabled,
            optional_fields: (!self.fields.is_empty()).then(|| {
                self.fields
                    .iter()
                    .map(|f| InventoryOptionalField::from_static(f.name()))
                    .collect()
            }),
            schedule: InventorySchedule {
                frequency: InventoryFrequency::from_static(match self.weekly {
                    true => InventoryFrequency::WEEKLY,
                    false => InventoryFrequency::DAILY,
                }),
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(id: &str) -> InventoryConfiguration {
        InventoryConfiguration {
            destination: InventoryDestination {
                s3_bucket_destination: InventoryS3BucketDestination {
                    account_id: None,
                    bucket: "arn:aws:s3:::dest".into(),
                    encryption: None,
                    format: InventoryFormat::from_static(InventoryFormat::CSV),
                    prefix: Some("inv".into()),
                },
            },
            filter: Some(InventoryFilter {
                prefix: "docs/".into(),
            }),
            id: id.into(),
            included_object_versions: InventoryIncludedObjectVersions::from_static("All"),
            is_enabled: true,
            optional_fields: Some(vec![
                InventoryOptionalField::from_static("StorageClass"),
                InventoryOptionalField::from_static("Size"),
                InventoryOptionalField::from_static("Size"),
            ]),
            schedule: InventorySchedule {
                frequency: InventoryFrequency::from_static("Weekly"),
            },
        }
    }

    fn code(r: S3Result<Inventory>) -> String {
        r.err().map(|e| e.code().as_str().to_string()).unwrap()
    }

    #[test]
    fn a_configuration_is_checked_and_shown_back() {
        let inv = check("a", sample("a")).unwrap();
        assert_eq!(inv.fields, [Field::Size, Field::StorageClass]);
        assert_eq!(inv.destination.bucket, "dest");
        assert!(inv.weekly && inv.all_versions);
        let again = check("a", inv.to_dto()).unwrap();
        assert_eq!(again, inv);
    }

    #[test]
    fn what_aws_refuses_is_refused_with_its_code() {
        assert_eq!(code(check("b", sample("a"))), "InvalidArgument");
        assert_eq!(code(check("a b", sample("a b"))), "InvalidArgument");
        let mut c = sample("a");
        c.destination.s3_bucket_destination.bucket = "dest".into();
        assert_eq!(code(check("a", c)), "InvalidS3DestinationBucket");
        let mut c = sample("a");
        c.destination.s3_bucket_destination.format = InventoryFormat::from_static("ORC");
        assert_eq!(code(check("a", c)), "NotImplemented");
        let mut c = sample("a");
        c.schedule.frequency = InventoryFrequency::from_static("Hourly");
        assert_eq!(code(check("a", c)), "MalformedXML");
        let mut c = sample("a");
        c.optional_fields = Some(vec![InventoryOptionalField::from_static("Colour")]);
        assert_eq!(code(check("a", c)), "MalformedXML");
    }
}
