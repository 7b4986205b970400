//! What the server settles in a request before s3s parses it, where s3s's own
//! answer would differ from AWS's: a SigV2 request's time (s3s checks none), the bounds
//! of a presigned URL's `X-Amz-Expires`, a presigned URL dated in the future, and a SigV4
//! credential scoped to another region
//! (s3s does not compare regions, and refuses names like s3cmd's `US` as malformed; AWS
//! names the right region, and SDKs and s3cmd sign again for it).

use hyper::header::AUTHORIZATION;
use hyper::{HeaderMap, StatusCode};
use std::borrow::Cow;
use time::OffsetDateTime;

/// A presigned URL is valid for at most a week (SigV4's limit, in seconds).
const MAX_EXPIRES: i64 = 604_800;
/// How far in the future a presigned URL's `X-Amz-Date` may lie (clock skew, as s3s allows).
const MAX_SKEW_SECS: i64 = 900;

/// A request refused before s3s sees it: status, S3 error code, message, and for a wrong
/// region the region the request should have been signed for (`<Region>`).
#[derive(Debug, PartialEq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub region: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
            region: None,
        }
    }
}

/// Every check of this module, in AWS's order: the credential's region, then the
/// presigned URL's lifetime.
pub(crate) fn check(headers: &HeaderMap, query: Option<&str>, region: &str) -> Result<(), Refusal> {
    sigv2_date(headers, OffsetDateTime::now_utc())?;
    credential_region(headers, query, region)?;
    presigned_expiry(query)?;
    presigned_not_yet_valid(query, OffsetDateTime::now_utc())
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<Cow<'a, str>> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A SigV4 credential (`AK/DATE/REGION/SERVICE/aws4_request`) for S3 must name this
/// server's region. Header auth gets `AuthorizationHeaderMalformed`, a presigned URL
/// `AuthorizationQueryParametersError`; both 400 with `<Region>`. Other services (STS)
/// and malformed credentials are left to s3s.
fn credential_region(
    headers: &HeaderMap,
    query: Option<&str>,
    region: &str,
) -> Result<(), Refusal> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("AWS4-HMAC-SHA256"))
        .and_then(|v| v.split_once("Credential="))
        .map(|(_, rest)| rest.split(',').next().unwrap_or_default().trim());
    let (credential, presigned) = match header {
        Some(c) => (Cow::Borrowed(c), false),
        None => match query_param(query, "X-Amz-Credential") {
            Some(c) => (c, true),
            None => return Ok(()),
        },
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [_, _, got, "s3", "aws4_request"] = scope.as_slice() else {
        return Ok(());
    };
    if *got == region {
        return Ok(());
    }
    let (code, message) = if presigned {
        (
            "AuthorizationQueryParametersError",
            format!("Error parsing the X-Amz-Credential parameter; the region '{got}' is wrong; expecting '{region}'"),
        )
    } else {
        (
            "AuthorizationHeaderMalformed",
            format!("The authorization header is malformed; the region '{got}' is wrong; expecting '{region}'"),
        )
    };
    Err(Refusal {
        region: Some(region.to_string()),
        ..Refusal::new(StatusCode::BAD_REQUEST, code, message)
    })
}

/// A SigV4 presigned URL's `X-Amz-Expires` must be a whole number of seconds from 0 to
/// a week. s3s accepts any 32-bit value and refuses others without saying why.
fn presigned_expiry(query: Option<&str>) -> Result<(), Refusal> {
    let Some(expires) = query_param(query, "X-Amz-Expires") else {
        return Ok(());
    };
    let refuse = |message: &'static str| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "AuthorizationQueryParametersError",
            message,
        )
    };
    let digits = expires.strip_prefix('-').unwrap_or(&expires);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse("X-Amz-Expires should be a number"));
    }
    if expires.starts_with('-') {
        return Err(refuse("X-Amz-Expires must be non-negative"));
    }
    // All digits: only too many of them can fail to parse, and that is over a week too.
    if expires.parse::<i64>().map_or(true, |n| n > MAX_EXPIRES) {
        return Err(refuse(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
        ));
    }
    Ok(())
}

/// A presigned URL dated beyond the clock skew in the future is not valid yet: AWS says
/// so with 403 AccessDenied, where s3s would answer RequestTimeTooSkewed.
fn presigned_not_yet_valid(query: Option<&str>, now: OffsetDateTime) -> Result<(), Refusal> {
    if query_param(query, "X-Amz-Signature").is_none() {
        return Ok(());
    }
    let Some(date) = query_param(query, "X-Amz-Date").and_then(|d| amz_date(&d)) else {
        return Ok(()); // s3s refuses what does not parse.
    };
    if (date - now).whole_seconds() > MAX_SKEW_SECS {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Request is not yet valid",
        ));
    }
    Ok(())
}

/// SigV2 header auth signs the request's time (`x-amz-date`, else `Date`, an HTTP date),
/// which s3s does not check: a missing, unreadable or pre-1970 time is 403 AccessDenied,
/// one off by more than the clock skew 403 RequestTimeTooSkewed, as AWS answers.
fn sigv2_date(headers: &HeaderMap, now: OffsetDateTime) -> Result<(), Refusal> {
    let v2 = headers
        .get(AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"AWS "));
    if !v2 {
        return Ok(());
    }
    let date = headers
        .get("x-amz-date")
        .or_else(|| headers.get(hyper::header::DATE))
        .and_then(|v| v.to_str().ok())
        .and_then(http_date)
        .filter(|d| d.year() >= 1970);
    let Some(date) = date else {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "AWS authentication requires a valid Date or x-amz-date header",
        ));
    };
    if (date - now).whole_seconds().abs() > MAX_SKEW_SECS {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ));
    }
    Ok(())
}

/// `Tue, 07 Jul 2010 21:53:04 GMT` (RFC 1123, as HTTP dates are sent). The weekday is
/// not checked against the date: clients send a fixed one with a bad date on purpose.
fn http_date(s: &str) -> Option<OffsetDateTime> {
    let (_weekday, rest) = s.trim().split_once(", ")?;
    let format = time::macros::format_description!(
        "[day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(rest, format)
        .ok()
        .map(|t| t.assume_utc())
}

/// `YYYYMMDDTHHMMSSZ`, SigV4's timestamp.
fn amz_date(s: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, format)
        .ok()
        .map(|t| t.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_is_a_number_of_seconds_up_to_a_week() {
        let msg = |q: &str| {
            presigned_expiry(Some(q))
                .err()
                .map(|r| (r.status.as_u16(), r.code, r.message.into_owned()))
        };
        assert_eq!(msg("X-Amz-Expires=604800&X-Amz-Signature=ab"), None);
        assert_eq!(msg("X-Amz-Expires=0"), None);
        assert_eq!(msg("list-type=2"), None);
        let week = "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds";
        for over in ["604801", "99999999999999999999999"] {
            let q = format!("X-Amz-Expires={over}");
            assert_eq!(
                msg(&q),
                Some((400, "AuthorizationQueryParametersError", week.to_string()))
            );
        }
        assert_eq!(
            msg("X-Amz-Expires=-1").unwrap().2,
            "X-Amz-Expires must be non-negative"
        );
        for junk in ["abc", "", "1e3", "-", "%2B5"] {
            let q = format!("X-Amz-Expires={junk}");
            assert_eq!(
                msg(&q).unwrap().2,
                "X-Amz-Expires should be a number",
                "{junk}"
            );
        }
    }

    #[test]
    fn credentials_for_another_region_name_the_right_one() {
        let auth = |scope: &str| {
            let mut h = HeaderMap::new();
            let v = format!(
                "AWS4-HMAC-SHA256 Credential=AK/20250101/{scope}/aws4_request, SignedHeaders=host, Signature=ab"
            );
            h.insert(AUTHORIZATION, v.parse().unwrap());
            h
        };
        let none = HeaderMap::new();
        assert_eq!(
            credential_region(&auth("us-east-1/s3"), None, "us-east-1"),
            Ok(())
        );
        // STS and SigV2 are not S3 SigV4 scopes.
        assert_eq!(
            credential_region(&auth("eu-west-1/sts"), None, "us-east-1"),
            Ok(())
        );
        let mut v2 = HeaderMap::new();
        v2.insert(AUTHORIZATION, "AWS AK:c2ln".parse().unwrap());
        assert_eq!(credential_region(&v2, None, "us-east-1"), Ok(()));
        let r = credential_region(&auth("US/s3"), None, "us-east-1").unwrap_err();
        assert_eq!(
            (r.status, r.code),
            (StatusCode::BAD_REQUEST, "AuthorizationHeaderMalformed")
        );
        assert_eq!(
            r.message,
            "The authorization header is malformed; the region 'US' is wrong; expecting 'us-east-1'"
        );
        assert_eq!(r.region.as_deref(), Some("us-east-1"));

        let q = "X-Amz-Credential=AK%2F20250101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=ab";
        let r = credential_region(&none, Some(q), "eu-central-1").unwrap_err();
        assert_eq!(r.code, "AuthorizationQueryParametersError");
        assert_eq!(
            r.message,
            "Error parsing the X-Amz-Credential parameter; the region 'eu-west-1' is wrong; expecting 'eu-central-1'"
        );
        assert_eq!(r.region.as_deref(), Some("eu-central-1"));
        assert_eq!(credential_region(&none, Some(q), "eu-west-1"), Ok(()));
    }

    #[test]
    fn presigned_urls_dated_in_the_future_are_not_valid_yet() {
        let now = amz_date("20250101T120000Z").unwrap();
        let at = |date: &str| {
            let q = format!("X-Amz-Date={date}&X-Amz-Expires=60&X-Amz-Signature=ab");
            presigned_not_yet_valid(Some(&q), now)
                .map_err(|r| (r.status.as_u16(), r.code, r.message))
        };
        assert_eq!(at("20250101T120000Z"), Ok(()));
        assert_eq!(at("20250101T121500Z"), Ok(()), "within the clock skew");
        assert_eq!(
            at("20250101T110000Z"),
            Ok(()),
            "the past is for the expiry check"
        );
        assert_eq!(
            at("20250101T121501Z"),
            Err((403, "AccessDenied", "Request is not yet valid".into()))
        );
        assert_eq!(at("garbage"), Ok(()), "left to s3s");
    }

    #[test]
    fn sigv2_times_must_be_readable_and_near() {
        let now = amz_date("20250101T120000Z").unwrap();
        let at = |name: &str, date: &str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, "AWS AK:c2ln".parse().unwrap());
            if !date.is_empty() {
                h.insert(
                    hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    date.parse().unwrap(),
                );
            }
            sigv2_date(&h, now).map_err(|r| (r.status.as_u16(), r.code))
        };
        assert_eq!(at("date", "Wed, 01 Jan 2025 12:10:00 GMT"), Ok(()));
        assert_eq!(at("x-amz-date", "Wed, 01 Jan 2025 11:50:00 GMT"), Ok(()));
        let denied = Err((403, "AccessDenied"));
        let skewed = Err((403, "RequestTimeTooSkewed"));
        assert_eq!(at("x-amz-date", "Bad Date"), denied);
        assert_eq!(at("date", ""), denied, "no date at all");
        assert_eq!(at("x-amz-date", "Tue, 07 Jul 1950 21:53:04 GMT"), denied);
        assert_eq!(at("x-amz-date", "Tue, 07 Jul 2010 21:53:04 GMT"), skewed);
        assert_eq!(at("x-amz-date", "Tue, 07 Jul 2030 21:53:04 GMT"), skewed);
        assert_eq!(at("date", "Tue, 07 Jul 9999 21:53:04 GMT"), skewed);
        // SigV4 requests are s3s's to check.
        let mut v4 = HeaderMap::new();
        v4.insert(
            AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=x".parse().unwrap(),
        );
        assert_eq!(sigv2_date(&v4, now), Ok(()));
    }
}
