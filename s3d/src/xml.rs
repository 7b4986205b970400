//! The XML our own responses need beyond what s3s writes.

use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
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

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(super::escape(r#"a<b>&"c""#), "a&lt;b&gt;&amp;&quot;c&quot;");
    }
}
