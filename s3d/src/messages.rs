//! A Message for every S3 error document. s3s answers some errors with a bare code
//! (InvalidBucketName, InvalidURI, SignatureDoesNotMatch, MissingContentLength…), and
//! clients print the Message; each gets AWS's text for its code.

use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::Response;
use s3s::Body;

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
