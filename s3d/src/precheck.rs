//! What the server settles in a request before s3s parses it, where s3s's own
//! answer would differ from AWS's: a Range header it cannot use, and the bounds of a
//! presigned URL's `X-Amz-Expires`.

use hyper::header::RANGE;
use hyper::{HeaderMap, Method, StatusCode};
use s3s::dto::Range;

/// A presigned URL is valid for at most a week (SigV4's limit, in seconds).
const MAX_EXPIRES: i64 = 604_800;

/// A request refused before s3s sees it: status, S3 error code, message.
#[derive(Debug, PartialEq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: &'static str,
}

/// Drop a GET or HEAD `Range` header that is not one valid byte range (`bytes=5-1`,
/// several ranges, garbage). RFC 9110 §14.2 has a server ignore such a header, and S3
/// then answers 200 with the whole object; s3s would refuse the request with 400.
/// A valid range past the end stays, and is answered 416 by the operation.
///
/// A Range the SigV4 signature covers must stay for s3s to verify it, and s3s parses it
/// before any hook of ours runs; such requests still get s3s's 400.
pub(crate) fn ignore_invalid_range(method: &Method, query: Option<&str>, headers: &mut HeaderMap) {
    if method != Method::GET && method != Method::HEAD || range_is_signed(query, headers) {
        return;
    }
    let usable = match headers.get_all(RANGE).iter().collect::<Vec<_>>()[..] {
        [] => return,
        [one] => one.to_str().is_ok_and(|v| Range::parse(v).is_ok()),
        _ => false,
    };
    if !usable {
        headers.remove(RANGE);
    }
}

/// Whether `range` is in the SigV4 SignedHeaders, of the Authorization header or of a
/// presigned query. SigV2 never signs it.
fn range_is_signed(query: Option<&str>, headers: &HeaderMap) -> bool {
    let covers = |list: &str| {
        list.split(';')
            .any(|h| h.trim().eq_ignore_ascii_case("range"))
    };
    let in_header = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("SignedHeaders=").nth(1))
        .is_some_and(|rest| covers(rest.split(',').next().unwrap_or("")));
    let in_query = query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "X-Amz-SignedHeaders" && covers(&v))
    });
    in_header || in_query
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

    fn after(method: Method, values: &[&str]) -> Vec<String> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(RANGE, v.parse().unwrap());
        }
        ignore_invalid_range(&method, None, &mut h);
        h.get_all(RANGE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn invalid_ranges_are_dropped_on_get_and_head_only() {
        for bad in [
            "bytes=5-1",
            "bytes=0-1,3-4",
            "bytes=abc",
            "items=0-1",
            "bytes=",
            "0-1",
        ] {
            assert!(after(Method::GET, &[bad]).is_empty(), "{bad}");
            assert!(after(Method::HEAD, &[bad]).is_empty(), "{bad}");
            assert_eq!(after(Method::PUT, &[bad]), [bad], "{bad}");
        }
        // Unsatisfiable but valid ranges stay, for a 416 from the operation.
        for good in [
            "bytes=0-1",
            "bytes=100-",
            "bytes=-5",
            "bytes=-0",
            "bytes=3-3",
        ] {
            assert_eq!(after(Method::GET, &[good]), [good], "{good}");
        }
        assert!(after(Method::GET, &["bytes=0-1", "bytes=2-3"]).is_empty());
    }

    #[test]
    fn a_signed_range_stays_for_the_signature_check() {
        let signed = "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, \
                      SignedHeaders=host;range;x-amz-date, Signature=00";
        let unsigned = signed.replace("host;range;", "host;");
        for (auth, query, stays) in [
            (Some(signed), None, true),
            (Some(unsigned.as_str()), None, false),
            (None, Some("X-Amz-SignedHeaders=host%3Brange"), true),
            (None, Some("X-Amz-SignedHeaders=host"), false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(RANGE, "bytes=5-1".parse().unwrap());
            if let Some(a) = auth {
                h.insert(hyper::header::AUTHORIZATION, a.parse().unwrap());
            }
            ignore_invalid_range(&Method::GET, query, &mut h);
            assert_eq!(h.contains_key(RANGE), stays, "{auth:?} {query:?}");
        }
    }

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
