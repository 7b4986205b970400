//! The XML our own responses need beyond what s3s writes.

use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use hyper::{Response, StatusCode};
use s3s::Body;

/// Escapes text for an XML element or attribute value (quick-xml's escaping of
/// the five markup characters).
pub(crate) fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// An S3 error document answered by cybs3 itself (before or beside s3s): the code, its
/// message, and for CORS refusals the method and resource type.
pub(crate) fn error_document(
    status: StatusCode,
    code: &str,
    message: &str,
    detail: Option<(&str, &str)>,
) -> Response<Body> {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{}</Message>",
        escape(message)
    );
    if let Some((method, kind)) = detail {
        xml.push_str(&format!(
            "<Method>{}</Method><ResourceType>{kind}</ResourceType>",
            escape(method)
        ));
    }
    error_response(status, xml)
}

/// An error document naming the region a request should have been signed for
/// (`AuthorizationHeaderMalformed`), which SDKs and s3cmd read to sign again.
pub(crate) fn wrong_region_document(
    status: StatusCode,
    code: &str,
    message: &str,
    region: &str,
) -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{}</Message><Region>{}</Region>",
        escape(message),
        escape(region)
    );
    error_response(status, xml)
}

/// Closes an `<Error>` document begun in `xml` and answers it.
fn error_response(status: StatusCode, mut xml: String) -> Response<Body> {
    xml.push_str("</Error>");
    let len = xml.len();
    let mut resp = Response::new(Body::from(xml));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// Keys may hold control characters that XML 1.0 cannot carry; s3s writes them raw. AWS
/// writes each as a character reference (`&#x1;`), and so do we, in every XML document
/// answered from memory that is not an object (objects have an ETag header). A carriage
/// return becomes `&#13;`, which XML's line-end normalization leaves alone; tab and line
/// feed stay as they are.
pub(crate) fn reference_controls(resp: Response<Body>) -> Response<Body> {
    let xml_answer = resp
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().ends_with(b"xml"))
        && !resp.headers().contains_key(ETAG);
    if !xml_answer {
        return resp;
    }
    let Some(bytes) = resp.body().bytes() else {
        return resp;
    };
    if !bytes.iter().any(|&b| b < 0x20 && b != b'\t' && b != b'\n') {
        return resp;
    }
    let mut out = Vec::with_capacity(bytes.len() + 16);
    for &b in bytes.iter() {
        match b {
            b'\r' => out.extend_from_slice(b"&#13;"),
            b'\t' | b'\n' => out.push(b),
            0..0x20 => out.extend_from_slice(format!("&#x{b:X};").as_bytes()),
            _ => out.push(b),
        }
    }
    let (mut parts, _) = resp.into_parts();
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
    Response::from_parts(parts, Body::from(bytes::Bytes::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(super::escape(r#"a<b>&"c""#), "a&lt;b&gt;&amp;&quot;c&quot;");
    }

    fn referenced(content_type: &str, etag: bool, body: &str) -> String {
        let mut resp = Response::new(Body::from(body.to_string()));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        if etag {
            resp.headers_mut()
                .insert(ETAG, HeaderValue::from_static("\"x\""));
        }
        let resp = reference_controls(resp);
        let body = String::from_utf8(resp.body().bytes().unwrap().to_vec()).unwrap();
        if let Some(len) = resp.headers().get(CONTENT_LENGTH) {
            assert_eq!(len.to_str().unwrap(), body.len().to_string());
        }
        body
    }

    #[test]
    fn control_characters_in_xml_answers_become_references() {
        assert_eq!(
            referenced(
                "application/xml",
                false,
                "<Key>a\u{1}b\tc\nd\re\u{1f}</Key>"
            ),
            "<Key>a&#x1;b\tc\nd&#13;e&#x1F;</Key>"
        );
        // Objects and other documents are left as they are.
        assert_eq!(referenced("application/xml", true, "a\u{1}"), "a\u{1}");
        assert_eq!(referenced("text/plain", false, "a\u{1}"), "a\u{1}");
    }
}
