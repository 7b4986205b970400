//! What may reach the log: s3s's own debug and trace lines never do.
//!
//! s3s logs each whole request at debug (the Authorization header, presigned query
//! strings with `X-Amz-Signature` and `X-Amz-Security-Token`, POST form fields), and on
//! a signature mismatch the signature it expected, which is a valid signature for that
//! request. It offers no redaction, so its lines below info are dropped at every
//! `RUST_LOG` setting; cybs3's own request lines carry the path and never the query.

/// Whether an event or span may be logged whatever `RUST_LOG` asks for.
pub fn loggable(meta: &tracing::Metadata<'_>) -> bool {
    let from_s3s = meta.target() == "s3s" || meta.target().starts_with("s3s::");
    !(from_s3s && *meta.level() > tracing::Level::INFO)
}

#[cfg(test)]
mod tests {
    use tracing::{Level, Metadata};

    fn event(target: &'static str, level: Level) -> bool {
        struct Cs;
        impl tracing::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                unreachable!("never registered")
            }
        }
        static CS: Cs = Cs;
        let fields = tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CS));
        let meta = Metadata::new(
            "e",
            target,
            level,
            None,
            None,
            None,
            fields,
            tracing::metadata::Kind::EVENT,
        );
        super::loggable(&meta)
    }

    #[test]
    fn s3s_debug_and_trace_are_dropped_and_nothing_else() {
        assert!(!event("s3s::service", Level::DEBUG));
        assert!(!event("s3s::ops::signature", Level::TRACE));
        assert!(!event("s3s", Level::DEBUG));
        assert!(event("s3s::service", Level::ERROR));
        assert!(event("s3s_fs", Level::DEBUG));
        assert!(event("cybs3_s3d::server", Level::TRACE));
    }
}
