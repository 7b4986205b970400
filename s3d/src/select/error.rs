//! What can go wrong in a query, each cause under the code AWS gives it: the parser,
//! the evaluator, the readers and the request's settings all fail with [`Error`], and
//! [`Error::into_s3`] is the one place it becomes an S3 error (400, AWS's code).

use s3s::{S3Error, S3ErrorCode};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("Unexpected token found {token} at line {line}, column {column}.")]
    UnexpectedToken {
        token: String,
        line: usize,
        column: usize,
    },
    #[error("Unsupported syntax {what} at line {line}, column {column}.")]
    UnsupportedSyntax {
        what: String,
        line: usize,
        column: usize,
    },
    #[error("Invalid literal {literal} at line {line}, column {column}.")]
    InvalidLiteral {
        literal: String,
        line: usize,
        column: usize,
    },
    #[error("The ExpressionType is invalid. Only SQL expressions are supported.")]
    ExpressionType,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Some headers in the query are missing from the file. Check the file and try again.")]
    MissingHeaders,
    #[error("The column index {0} is invalid: columns are numbered from _1.")]
    ColumnIndex(i64),
    #[error("Encountered an error parsing the CSV file: {0}")]
    Csv(String),
    #[error("Encountered an error parsing the JSON file: {0}")]
    Json(String),
    #[error("Encountered an error reading the Parquet file: {0}")]
    Parquet(String),
    #[error("The file is not in a supported compression format: {0}")]
    Compression(String),
    #[error("Scan range queries are not supported on this type of object: {0}")]
    ScanRangeInput(&'static str),
    #[error("The scan range is invalid: {0}")]
    ScanRange(String),
    #[error("Attempt to convert from one data type to another using CAST failed: {0}")]
    Cast(String),
    #[error("Incorrect argument to {0}.")]
    Arguments(String),
    #[error("The query uses a type that is not valid for {0}.")]
    DataType(String),
    #[error("Division by zero.")]
    DivideByZero,
    #[error("{0}")]
    Aggregate(String),
    /// Reading the object failed (the engine's own error, already an S3 error).
    #[error("{0}")]
    Read(String),
}

impl Error {
    /// AWS's code for this cause.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Error::UnexpectedToken { .. } => "ParseUnexpectedToken",
            Error::UnsupportedSyntax { .. } => "ParseUnsupportedSyntax",
            Error::InvalidLiteral { .. } => "ParseInvalidTypeParam",
            Error::ExpressionType => "InvalidExpressionType",
            Error::InvalidRequest(_) => "InvalidRequestParameter",
            Error::MissingHeaders => "MissingHeaders",
            Error::ColumnIndex(_) => "InvalidColumnIndex",
            Error::Csv(_) => "CSVParsingError",
            Error::Json(_) => "JSONParsingError",
            Error::Parquet(_) => "ParquetParsingError",
            Error::Compression(_) => "InvalidCompressionFormat",
            Error::ScanRangeInput(_) => "UnsupportedScanRangeInput",
            Error::ScanRange(_) => "InvalidScanRange",
            Error::Cast(_) => "CastFailed",
            Error::Arguments(_) => "EvaluatorInvalidArguments",
            Error::DataType(_) => "InvalidDataType",
            Error::DivideByZero => "DivideByZero",
            Error::Aggregate(_) => "InvalidQuery",
            Error::Read(_) => "InternalError",
        }
    }

    pub(crate) fn into_s3(self) -> S3Error {
        if let Error::Read(why) = &self {
            // The details are for the operator's log, as for any read.
            tracing::error!("select: reading the object failed: {why}");
            return S3Error::with_message(
                S3ErrorCode::InternalError,
                "We encountered an internal error. Please try again.",
            );
        }
        let mut e =
            S3Error::with_message(S3ErrorCode::Custom(self.code().into()), self.to_string());
        e.set_status_code(hyper::StatusCode::BAD_REQUEST);
        e
    }

    /// The error a reader's `io::Error` carries: ours when a lower layer tagged it, else
    /// `other` (the cause the failing layer stands for).
    pub(crate) fn from_io(e: std::io::Error, other: impl FnOnce(String) -> Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return *e
                .into_inner()
                .expect("checked")
                .downcast::<Error>()
                .expect("checked");
        }
        other(e.to_string())
    }

    /// This error inside an `io::Error`, so it crosses a reader chain unchanged.
    pub(crate) fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;
