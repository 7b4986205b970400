//! Where cybs3 keeps things (CONTRACT.md, "Files, environment").

use std::path::PathBuf;

/// Data, pid files, logs and the default store: `$CYBS3_HOME`, else `$XDG_DATA_HOME/cybs3`.
pub fn data_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CYBS3_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
            PathBuf::from(home).join(".local/share")
        });
    base.join("cybs3")
}

/// The default store directory, `<data dir>/store`.
pub fn default_store() -> PathBuf {
    data_dir().join("store")
}
