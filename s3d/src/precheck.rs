//! What the server settles in a request before s3s parses it, where s3s's own
//! answer would differ from AWS's: the bounds of a presigned URL's `X-Amz-Expires`.

use hyper::StatusCode;

/// A presigned URL is valid for at most a week (SigV4's limit, in seconds).
const MAX_EXPIRES: i64 = 604_800;

/// A request refused before s3s sees it: status, S3 error code, message.
#[derive(Debug, PartialEq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: &'static str,
}

/// A SigV4 presigned URL's `X-Amz-Expires` must be a whole number of seconds from 0 to
/// a week. s3s accepts any 32-bit value and refuses others without saying why.
pub(crate) fn presigned_expiry(query: Option<&str>) -> Result<(), Refusal> {
    let Some(query) = query else { return Ok(()) };
    let mut pairs = form_urlencoded::parse(query.as_bytes());
    let Some((_, expires)) = pairs.find(|(k, _)| k == "X-Amz-Expires") else {
        return Ok(());
    };
    let refuse = |message| Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "AuthorizationQueryParametersError",
        message,
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
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_is_a_number_of_seconds_up_to_a_week() {
        let msg = |q: &str| {
            presigned_expiry(Some(q))
                .err()
                .map(|r| (r.status.as_u16(), r.code, r.message))
        };
        assert_eq!(msg("X-Amz-Expires=604800&X-Amz-Signature=ab"), None);
        assert_eq!(msg("X-Amz-Expires=0"), None);
        assert_eq!(msg("list-type=2"), None);
        let week = "X-Amz-Expires must be less than a week (in seconds) that is 604800";
        for over in ["604801", "99999999999999999999999"] {
            let q = format!("X-Amz-Expires={over}");
            assert_eq!(
                msg(&q),
                Some((400, "AuthorizationQueryParametersError", week))
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
}
