//! The little XML the client reads itself: STS answers and listing extensions the SDK
//! does not model. Flat lookups, not a parser.

/// The raw content of the first `<name>…</name>` in `xml`.
pub(crate) fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + len])
}

/// XML text with its entities resolved (`None` if one is malformed).
pub(crate) fn unescape(s: &str) -> Option<String> {
    quick_xml::escape::unescape(s).ok().map(|c| c.into_owned())
}

/// The text of the first `<name>…</name>` in `xml`.
pub(crate) fn text(xml: &str, name: &str) -> Option<String> {
    element(xml, name).and_then(unescape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found() {
        let xml = "<E><Code>AccessDenied</Code><Message>a &amp; b &lt;c&gt;</Message></E>";
        assert_eq!(text(xml, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(text(xml, "Message").as_deref(), Some("a & b <c>"));
        assert_eq!(element(xml, "Message"), Some("a &amp; b &lt;c&gt;"));
        assert_eq!(text(xml, "Nope"), None);
    }
}
