//! Who is calling and what they may do. This layer sits under the operations and
//! imports nothing from them (only the base: `ctx`, `errors`, `xml`).
//!
//! - [`auth`]: the credentials s3s checks signatures against, the caller resolved
//!   once per request, and the access checks at each operation's hooks.
//! - [`decide`]: what a resolved caller may do (policies, condition keys, ACLs).
//! - [`keys`]: access keys (bucket keys, users' keys, sessions), sealed in the engine's metadata.
//! - [`iam`], [`policy`], [`bucket_policy`]: users, groups, IAM policies and their evaluation.
//! - [`sts`], [`ldap`]: temporary credentials for directory logins and local users.
//! - [`on_behalf`]: requests the server makes for a user (a batch job's tasks).
//! - [`owners`]: the canonical id and display name of every caller that can own things.
//! - [`grants`]: buckets' owners, ACLs, object ownership and public access blocks as
//!   stored, and the ACL grants that decide what no policy did.

pub(crate) mod auth;
pub(crate) mod bucket_policy;
mod decide;
pub(crate) mod grants;
pub(crate) mod iam;
pub(crate) mod keys;
pub mod ldap;
mod on_behalf;
pub(crate) mod owners;
pub(crate) mod policy;
pub(crate) mod sts;

/// The server-record namespaces of identity (users, groups, policies, access keys): what
/// a site group replicates of the server's own records.
pub(crate) fn replicated_namespaces() -> Vec<String> {
    [iam::USERS, iam::GROUPS, iam::POLICIES, keys::NS]
        .map(String::from)
        .to_vec()
}
