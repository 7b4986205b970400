//! A Message for every S3 error document, and a request id for every response. s3s
//! answers some errors with a bare code (InvalidBucketName, InvalidURI,
//! SignatureDoesNotMatch, MissingContentLength…), and clients print the Message; each
//! gets AWS's text for its code. s3s sets no request id at all; AWS sends one on every
//! response and repeats it in error documents, and clients report it with failures.

use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::Response;
use rand::distr::{Alphanumeric, SampleString};
use s3s::Body;

const REQUEST_ID: &str = "x-amz-request-id";

/// AWS's message for `code` (from its error-code reference), for codes that can reach
/// a client without one.
fn standard(code: &str) -> &'static str {
    match code {
        "AccessDenied" => "Access Denied",
        "AuthorizationHeaderMalformed" => "The authorization header is malformed.",
        "BadDigest" => "The Content-MD5 you specified did not match what we received.",
        "EntityTooLarge" => "Your proposed upload exceeds the maximum allowed object size.",
        "IncompleteBody" => {
            "You did not provide the number of bytes specified by the Content-Length HTTP header."
        }
        "InternalError" => "We encountered an internal error. Please try again.",
        "InvalidAccessKeyId" => {
            "The AWS access key ID you provided does not exist in our records."
        }
        "InvalidArgument" => "Invalid Argument",
        "InvalidBucketName" => "The specified bucket is not valid.",
        "InvalidDigest" => "The Content-MD5 you specified is not valid.",
        "InvalidRange" => "The requested range is not satisfiable",
        "InvalidRequest" => "Invalid Request",
        "InvalidURI" => "Couldn't parse the specified URI.",
        "KeyTooLongError" => "Your key is too long.",
        "MalformedXML" => {
            "The XML you provided was not well-formed or did not validate against our published schema."
        }
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "NoSuchBucket" => "The specified bucket does not exist.",
        "NoSuchKey" => "The specified key does not exist.",
        "NotImplemented" => {
            "A header you provided implies functionality that is not implemented."
        }
        "PreconditionFailed" => "At least one of the pre-conditions you specified did not hold",
        "RequestTimeTooSkewed" => {
            "The difference between the request time and the server's time is too large."
        }
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. \
             Check your key and signing method."
        }
        "XAmzContentSHA256Mismatch" => {
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        }
        _ => "The request was refused; the error code says why.",
    }
}

/// Give an error document without a `<Message>` the standard one for its code.
pub(crate) fn fill(resp: &mut Response<Body>) {
    if resp.status().as_u16() < 400 {
        return;
    }
    // Error documents are built whole in memory; anything streamed is not one.
    let Some(bytes) = resp.body().bytes() else {
        return;
    };
    let Ok(xml) = std::str::from_utf8(&bytes) else {
        return;
    };
    if xml.contains("<Message>") {
        return;
    }
    let Some(code_end) = xml.find("</Code>") else {
        return;
    };
    let Some(code) = xml[..code_end].rsplit("<Code>").next() else {
        return;
    };
    let filled = format!(
        "{}</Code><Message>{}</Message>{}",
        &xml[..code_end],
        crate::xml::escape(standard(code)),
        &xml[code_end + "</Code>".len()..]
    );
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(filled.len()));
    *resp.body_mut() = Body::from(filled);
}

/// A new request id: 16 upper-case letters and digits, the shape of AWS's.
pub(crate) fn new_request_id() -> String {
    Alphanumeric
        .sample_string(&mut rand::rng(), 16)
        .to_uppercase()
}

/// The error code of an error document built in memory (`<Code>…</Code>`).
pub(crate) fn error_code(resp: &Response<Body>) -> Option<String> {
    if resp.status().as_u16() < 400 {
        return None;
    }
    let bytes = resp.body().bytes()?;
    let xml = std::str::from_utf8(&bytes).ok()?;
    let start = xml.find("<Code>")? + "<Code>".len();
    let len = xml[start..].find("</Code>")?;
    Some(xml[start..start + len].to_string())
}

/// Give a response an `x-amz-request-id` header and an error document a `<RequestId>`
/// equal to it: `id`, the one chosen when the request came in (and audited); returns
/// the id. A response that already names its request keeps that id in both places.
pub(crate) fn identify(resp: &mut Response<Body>, id: &str) -> String {
    // Only documents built whole in memory are read; streamed bodies are objects.
    let body = resp.body().bytes();
    let xml = body.as_deref().and_then(|b| std::str::from_utf8(b).ok());
    let in_body = xml.and_then(|x| {
        let start = x.find("<RequestId>")? + "<RequestId>".len();
        let len = x[start..].find("</RequestId>")?;
        Some(x[start..start + len].to_string())
    });
    let header = resp
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let id = header
        .clone()
        .or_else(|| in_body.clone())
        .unwrap_or_else(|| id.to_string());
    if header.is_none() {
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(REQUEST_ID, v);
        }
    }
    if resp.status().as_u16() < 400 || in_body.is_some() {
        return id;
    }
    let Some(at) = xml.and_then(|x| x.rfind("</Error>")) else {
        return id;
    };
    let xml = xml.unwrap_or_default();
    let filled = format!(
        "{}<RequestId>{}</RequestId>{}",
        &xml[..at],
        crate::xml::escape(&id),
        &xml[at..]
    );
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(filled.len()));
    *resp.body_mut() = Body::from(filled);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(status: u16, body: &str) -> String {
        let mut resp = Response::new(Body::from(body.to_string()));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        fill(&mut resp);
        let body = resp.body().bytes().unwrap();
        let len = resp.headers().get(CONTENT_LENGTH);
        if let Some(len) = len {
            assert_eq!(len.to_str().unwrap(), body.len().to_string());
        }
        String::from_utf8(body.to_vec()).unwrap()
    }

    fn identified(status: u16, body: &str, header: Option<&str>) -> (String, String, String) {
        let mut resp = Response::new(Body::from(body.to_string()));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        if let Some(h) = header {
            resp.headers_mut()
                .insert(REQUEST_ID, HeaderValue::from_str(h).unwrap());
        }
        let id = identify(&mut resp, "NEWID");
        let header = resp.headers()[REQUEST_ID].to_str().unwrap().to_string();
        let body = String::from_utf8(resp.body().bytes().unwrap().to_vec()).unwrap();
        if let Some(len) = resp.headers().get(CONTENT_LENGTH) {
            assert_eq!(len.to_str().unwrap(), body.len().to_string());
        }
        (id, header, body)
    }

    #[test]
    fn every_response_gets_a_request_id_and_error_documents_repeat_it() {
        let (id, header, body) = identified(404, "<Error><Code>NoSuchKey</Code></Error>", None);
        assert_eq!(id, header);
        assert_eq!(id, "NEWID");
        assert_eq!(
            body,
            format!("<Error><Code>NoSuchKey</Code><RequestId>{id}</RequestId></Error>")
        );
        let (id, _, body) = identified(403, "<Error><Code>X</Code></Error>", Some("ABC"));
        assert_eq!(id, "ABC");
        assert!(body.ends_with("<RequestId>ABC</RequestId></Error>"));
        // STS documents name their request already: the header follows them.
        let sts =
            "<ErrorResponse><Error><Code>X</Code></Error><RequestId>Q1</RequestId></ErrorResponse>";
        let (id, header, body) = identified(400, sts, None);
        assert_eq!(
            (id.as_str(), header.as_str(), body.as_str()),
            ("Q1", "Q1", sts)
        );
        let (_, header, body) = identified(200, "<ListAllMyBucketsResult/>", None);
        assert_eq!(
            (header.as_str(), body.as_str()),
            ("NEWID", "<ListAllMyBucketsResult/>")
        );
    }

    #[test]
    fn bare_codes_get_aws_messages_and_others_are_left_alone() {
        let bare = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidBucketName</Code></Error>";
        assert_eq!(
            filled(400, bare),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidBucketName</Code>\
             <Message>The specified bucket is not valid.</Message></Error>"
        );
        let odd = "<Error><Code>SomethingNew</Code><RequestId>1</RequestId></Error>";
        assert!(filled(400, odd).contains("</Code><Message>The request was refused"));
        let with = "<Error><Code>NoSuchKey</Code><Message>mine</Message></Error>";
        assert_eq!(filled(404, with), with);
        assert_eq!(filled(200, "<Code>x</Code>"), "<Code>x</Code>");
        assert_eq!(filled(304, ""), "");
    }
}
