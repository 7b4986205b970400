//! Listings as range scans over the sorted metadata keys.
//!
//! With a delimiter, each common prefix is reported once and the scan jumps
//! straight past every key under it, so a folder of a million keys costs one
//! seek, not a million steps.

use crate::drive::Db;
use crate::error::Result;
use crate::record::{self, keys, ObjectVersion, PartRecord, UploadRecord};
use heed::{RoTxn, WithoutTls};
use std::ops::Bound;

#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Start strictly after this key (marker / start-after / continuation).
    pub after: Option<String>,
    pub max: usize,
}

#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectVersion>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or prefix returned, to continue after when truncated.
    pub next: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct VersionQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub version_marker: Option<String>,
    pub max: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VersionEntry {
    pub version: ObjectVersion,
    pub is_latest: bool,
}

#[derive(Clone, Debug, Default)]
pub struct VersionPage {
    pub versions: Vec<VersionEntry>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    pub next_key: Option<String>,
    pub next_version: Option<String>,
}

enum Item<T> {
    Entry(T),
    Prefix(String),
}

/// Walk keys `base + k` for `k` starting with `prefix`, rolling up common prefixes.
/// `visit` decodes one entry; returning `None` skips it.
/// One walk over a table: keys `base + name…` with `name` starting with `prefix`.
struct Walk<'a> {
    base: &'a [u8],
    prefix: &'a str,
    delimiter: Option<&'a str>,
    /// First table key to look at.
    start: Vec<u8>,
    /// Common prefixes at or before this are not reported again.
    after: Option<&'a str>,
    limit: usize,
}

fn scan<T>(
    rtxn: &RoTxn<WithoutTls>,
    db: Db,
    walk: Walk,
    mut visit: impl FnMut(&str, &[u8], &[u8]) -> Result<Option<T>>,
) -> Result<Vec<Item<T>>> {
    let Walk {
        base,
        prefix: q_prefix,
        delimiter,
        start,
        after,
        limit,
    } = walk;
    let mut full_prefix = base.to_vec();
    full_prefix.extend_from_slice(q_prefix.as_bytes());
    let mut items = Vec::new();
    let mut from = start;
    'seek: loop {
        let range = (Bound::Included(from.as_slice()), Bound::Unbounded);
        for kv in db.range(rtxn, &range)? {
            let (k, v) = kv?;
            if !k.starts_with(&full_prefix) {
                break 'seek;
            }
            let rest = &k[base.len()..];
            let name_end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
            let name = std::str::from_utf8(&rest[..name_end])
                .map_err(|_| crate::Error::Meta("non-UTF-8 key in index".into()))?;
            if let Some(d) = delimiter.filter(|d| !d.is_empty()) {
                if let Some(pos) = name[q_prefix.len()..].find(d) {
                    let cp = &name[..q_prefix.len() + pos + d.len()];
                    let mut skip = base.to_vec();
                    skip.extend_from_slice(cp.as_bytes());
                    if after.is_none_or(|a| cp > a) {
                        items.push(Item::Prefix(cp.to_string()));
                        if items.len() >= limit {
                            break 'seek;
                        }
                    }
                    match keys::prefix_end(&skip) {
                        Some(next) => {
                            from = next;
                            continue 'seek;
                        }
                        None => break 'seek,
                    }
                }
            }
            if let Some(t) = visit(name, &rest[name_end..], v)? {
                items.push(Item::Entry(t));
                if items.len() >= limit {
                    break 'seek;
                }
            }
        }
        break;
    }
    Ok(items)
}

fn start_key(base: &[u8], prefix: &str, after: Option<&str>) -> Vec<u8> {
    let mut k = base.to_vec();
    match after {
        Some(a) if a >= prefix => {
            k.extend_from_slice(a.as_bytes());
            k.push(1);
        }
        _ => k.extend_from_slice(prefix.as_bytes()),
    }
    k
}

pub(crate) fn objects(
    rtxn: &RoTxn<WithoutTls>,
    db: Db,
    bucket: &str,
    q: &ListQuery,
) -> Result<ListPage> {
    let base = keys::latest_base(bucket);
    let after = q.after.as_deref();
    let start = start_key(&base, &q.prefix, after);
    let walk = Walk {
        base: &base,
        prefix: &q.prefix,
        delimiter: q.delimiter.as_deref(),
        start,
        after,
        limit: q.max.saturating_add(1),
    };
    let mut items = scan(rtxn, db, walk, |_, _, v| {
        record::decode::<ObjectVersion>(v).map(Some)
    })?;
    let truncated = items.len() > q.max;
    items.truncate(q.max);
    let mut page = ListPage {
        truncated,
        ..ListPage::default()
    };
    for item in items {
        match item {
            Item::Entry(v) => {
                page.next = Some(v.key.clone());
                page.objects.push(v);
            }
            Item::Prefix(p) => {
                page.next = Some(p.clone());
                page.prefixes.push(p);
            }
        }
    }
    Ok(page)
}

pub(crate) fn versions(
    rtxn: &RoTxn<WithoutTls>,
    db: Db,
    bucket: &str,
    q: &VersionQuery,
) -> Result<VersionPage> {
    let base = keys::version_base(bucket);
    let mut start = start_key(&base, &q.prefix, None);
    let mut after = None;
    if let Some(km) = q
        .key_marker
        .as_deref()
        .filter(|km| *km >= q.prefix.as_str())
    {
        match q.version_marker.as_deref() {
            Some(vm) if !vm.is_empty() => {
                let sort = find_sort(rtxn, db, bucket, km, vm)?;
                start = match sort {
                    Some(sort) => {
                        let mut k = keys::version(bucket, km, &sort);
                        k.push(0);
                        k
                    }
                    None => keys::prefix_end(&keys::versions_of(bucket, km)).unwrap_or_default(),
                };
            }
            _ => {
                start = keys::prefix_end(&keys::versions_of(bucket, km)).unwrap_or_default();
                after = Some(km);
            }
        }
    }
    // The first version seen of each key is its latest, unless the scan starts mid-key.
    let mut last_key: Option<String> = q.version_marker.as_ref().and(q.key_marker.clone());
    let walk = Walk {
        base: &base,
        prefix: &q.prefix,
        delimiter: q.delimiter.as_deref(),
        start,
        after,
        limit: q.max.saturating_add(1),
    };
    let mut items = scan(rtxn, db, walk, |name, _, v| {
        let is_latest = last_key.as_deref() != Some(name);
        if is_latest {
            last_key = Some(name.to_string());
        }
        let version = record::decode::<ObjectVersion>(v)?;
        Ok(Some(VersionEntry { version, is_latest }))
    })?;
    let truncated = items.len() > q.max;
    items.truncate(q.max);
    let mut page = VersionPage {
        truncated,
        ..VersionPage::default()
    };
    for item in items {
        match item {
            Item::Entry(e) => {
                page.next_key = Some(e.version.key.clone());
                page.next_version = Some(e.version.version_id.clone());
                page.versions.push(e);
            }
            Item::Prefix(p) => {
                page.next_key = Some(p.clone());
                page.next_version = None;
                page.prefixes.push(p);
            }
        }
    }
    Ok(page)
}

fn find_sort(
    rtxn: &RoTxn<WithoutTls>,
    db: Db,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<[u8; 16]>> {
    if let Some(sort) = crate::ops::parse_version_id(version_id) {
        return Ok(Some(sort));
    }
    for kv in db.prefix_iter(rtxn, &keys::versions_of(bucket, key))? {
        let (_, v) = kv?;
        let v: ObjectVersion = record::decode(v)?;
        if v.version_id == version_id {
            return Ok(Some(v.sort));
        }
    }
    Ok(None)
}

/// In-progress multipart uploads, by key then initiation time.
pub(crate) fn uploads(
    rtxn: &RoTxn<WithoutTls>,
    db: Db,
    bucket: &str,
    prefix: &str,
    key_marker: Option<&str>,
    upload_marker: Option<&str>,
    max: usize,
) -> Result<(Vec<UploadRecord>, bool)> {
    let base = keys::upload_base(bucket);
    let start = match (key_marker, upload_marker) {
        (Some(k), Some(u)) => {
            let mut s = keys::upload(bucket, k, u);
            s.push(0);
            s
        }
        (Some(k), None) => {
            let mut s = base.clone();
            s.extend_from_slice(k.as_bytes());
            s.push(1);
            s
        }
        _ => start_key(&base, prefix, None),
    };
    let mut full = base.clone();
    full.extend_from_slice(prefix.as_bytes());
    let mut out = Vec::new();
    for kv in db.range(rtxn, &(Bound::Included(start.as_slice()), Bound::Unbounded))? {
        let (k, v) = kv?;
        if !k.starts_with(&full) {
            break;
        }
        if out.len() == max {
            return Ok((out, true));
        }
        out.push(record::decode::<UploadRecord>(v)?);
    }
    Ok((out, false))
}

/// Parts of an upload after `marker`, in part-number order.
pub(crate) fn parts(
    rtxn: &RoTxn<WithoutTls>,
    db: Db,
    upload_id: &str,
    marker: u32,
    max: usize,
) -> Result<(Vec<PartRecord>, bool)> {
    let mut out = Vec::new();
    for kv in db.prefix_iter(rtxn, &keys::parts_of(upload_id))? {
        let (_, v) = kv?;
        let p = record::decode::<PartRecord>(v)?;
        if p.entry.number <= marker {
            continue;
        }
        if out.len() == max {
            return Ok((out, true));
        }
        out.push(p);
    }
    Ok((out, false))
}
