//! Users, groups and named policies of a server, and the calls that manage them.
//!
//! All of it lives in the engine's server records (replicated and durable like every
//! record): users and groups name the policies they get; a policy is an AWS IAM JSON
//! document, stored as given. The canned policies (`readonly`, `readwrite`,
//! `writeonly`, `admin`) are built in and cannot be replaced.

use crate::identity::keys::{Keyring, Owner};
use crate::identity::owners;
use crate::identity::policy::{self, Policy};
use engine::{CanonicalUser, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(crate) const USERS: &str = "user";
pub(crate) const GROUPS: &str = "group";
pub(crate) const POLICIES: &str = "policy";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct UserRecord {
    created_unix: u64,
    policies: Vec<String>,
    groups: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct GroupRecord {
    policies: Vec<String>,
}

/// One management call, as sent over the admin socket (JSON) or run on a stopped store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum IamCall {
    UserAdd {
        name: String,
        #[serde(default)]
        policies: Vec<String>,
        #[serde(default)]
        groups: Vec<String>,
    },
    UserList,
    UserRemove {
        name: String,
    },
    PolicyAdd {
        name: String,
        document: String,
    },
    PolicyList,
    PolicyRemove {
        name: String,
    },
    PolicyAttach {
        policy: String,
        #[serde(flatten)]
        to: Target,
    },
    PolicyDetach {
        policy: String,
        #[serde(flatten)]
        to: Target,
    },
    GroupAdd {
        name: String,
        #[serde(default)]
        policies: Vec<String>,
    },
    GroupList,
    GroupRemove {
        name: String,
    },
    GroupAddUser {
        group: String,
        user: String,
    },
    GroupRemoveUser {
        group: String,
        user: String,
    },
}

/// What a policy is attached to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    User(String),
    Group(String),
}

/// A new user: the only time its secret is shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
    pub policies: Vec<String>,
    pub groups: Vec<String>,
    /// The canonical id ACL grants name the user by.
    pub canonical_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub access_keys: Vec<String>,
    pub policies: Vec<String>,
    pub groups: Vec<String>,
    pub created_unix: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    pub policies: Vec<String>,
    pub members: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyInfo {
    pub name: String,
    pub builtin: bool,
    pub document: serde_json::Value,
}

/// A refused management call (the message says what to do) or a store failure.
#[derive(Debug)]
pub enum IamError {
    Refused(String),
    Store(engine::Error),
}

impl std::fmt::Display for IamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IamError::Refused(m) => f.write_str(m),
            IamError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for IamError {}

impl From<engine::Error> for IamError {
    fn from(e: engine::Error) -> Self {
        IamError::Store(e)
    }
}

type Result<T> = std::result::Result<T, IamError>;

fn refused<T>(msg: impl Into<String>) -> Result<T> {
    Err(IamError::Refused(msg.into()))
}

/// Parsed policies by cache name, with the text each was parsed from.
type ParsedPolicies = HashMap<String, (Vec<u8>, Arc<Policy>)>;

/// The server's users, groups and policies.
#[derive(Clone)]
pub struct Iam {
    store: Store,
    keyring: Keyring,
    /// Parsed stored and bucket policies, with the text they were parsed from.
    parsed: Arc<Mutex<ParsedPolicies>>,
}

impl Iam {
    pub fn new(store: Store, server_key: &[u8; 32]) -> Iam {
        Iam {
            keyring: Keyring::new(store.clone(), server_key),
            store,
            parsed: Arc::default(),
        }
    }

    /// The store buckets' access settings are read from.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Run one management call; the answer is JSON for the CLI.
    pub fn apply(&self, call: IamCall) -> Result<serde_json::Value> {
        match call {
            IamCall::UserAdd {
                name,
                policies,
                groups,
            } => Ok(json(self.user_add(&name, policies, groups)?)),
            IamCall::UserList => Ok(json(self.user_list()?)),
            IamCall::UserRemove { name } => Ok(json(self.user_remove(&name)?)),
            IamCall::PolicyAdd { name, document } => Ok(json(self.policy_add(&name, &document)?)),
            IamCall::PolicyList => Ok(json(self.policy_list()?)),
            IamCall::PolicyRemove { name } => Ok(json(self.policy_remove(&name)?)),
            IamCall::PolicyAttach { policy, to } => Ok(json(self.attach(&policy, &to, true)?)),
            IamCall::PolicyDetach { policy, to } => Ok(json(self.attach(&policy, &to, false)?)),
            IamCall::GroupAdd { name, policies } => Ok(json(self.group_add(&name, policies)?)),
            IamCall::GroupList => Ok(json(self.group_list()?)),
            IamCall::GroupRemove { name } => Ok(json(self.group_remove(&name)?)),
            IamCall::GroupAddUser { group, user } => {
                Ok(json(self.membership(&group, &user, true)?))
            }
            IamCall::GroupRemoveUser { group, user } => {
                Ok(json(self.membership(&group, &user, false)?))
            }
        }
    }

    fn user_add(&self, name: &str, policies: Vec<String>, groups: Vec<String>) -> Result<NewUser> {
        check_name("user", name)?;
        if self.user(name)?.is_some() {
            return refused(format!("user {name} already exists"));
        }
        for p in &policies {
            self.require_policy(p)?;
        }
        for g in &groups {
            if self.group(g)?.is_none() {
                return refused(format!(
                    "there is no group {g}; create it with `cybs3 admin group add {g}`"
                ));
            }
        }
        let rec = UserRecord {
            created_unix: crate::identity::keys::now_unix(),
            policies: dedup(policies),
            groups: dedup(groups),
        };
        self.put(USERS, name, Some(&rec))?;
        let (access_key, secret_key) = self.keyring.insert(Owner::User(name.to_string()))?;
        Ok(NewUser {
            name: name.to_string(),
            access_key,
            secret_key,
            policies: rec.policies,
            groups: rec.groups,
            canonical_id: crate::identity::owners::user(name).id,
        })
    }

    pub(crate) fn user_list(&self) -> Result<Vec<UserInfo>> {
        let mut keys: HashMap<String, Vec<String>> = HashMap::new();
        for (ak, owner, _) in self.keyring.owners()? {
            if let Owner::User(u) = owner {
                keys.entry(u).or_default().push(ak);
            }
        }
        self.records::<UserRecord>(USERS)?
            .into_iter()
            .map(|(name, r)| {
                Ok(UserInfo {
                    access_keys: keys.remove(&name).unwrap_or_default(),
                    name,
                    policies: r.policies,
                    groups: r.groups,
                    created_unix: r.created_unix,
                })
            })
            .collect()
    }

    /// Remove a user and every key and session of theirs. False when there was none.
    fn user_remove(&self, name: &str) -> Result<bool> {
        if self.user(name)?.is_none() {
            return Ok(false);
        }
        self.keyring.remove_user_keys(name)?;
        self.put::<UserRecord>(USERS, name, None)?;
        Ok(true)
    }

    fn policy_add(&self, name: &str, document: &str) -> Result<bool> {
        check_name("policy", name)?;
        if policy::canned(name).is_some() {
            return refused(format!(
                "{name} is a built-in policy and cannot be replaced"
            ));
        }
        let p = Policy::parse(document).map_err(|e| IamError::Refused(format!("{e}")))?;
        self.store
            .set_server_record(POLICIES, name, Some(p.to_json().into_bytes()))?;
        Ok(true)
    }

    fn policy_list(&self) -> Result<Vec<PolicyInfo>> {
        let mut out: Vec<PolicyInfo> = policy::CANNED
            .iter()
            .filter_map(|n| policy::canned(n).map(|p| (n, p)))
            .map(|(n, p)| PolicyInfo {
                name: n.to_string(),
                builtin: true,
                document: document_value(&p.to_json()),
            })
            .collect();
        for (name, text) in self.store.server_records(POLICIES)? {
            out.push(PolicyInfo {
                name,
                builtin: false,
                document: document_value(&String::from_utf8_lossy(&text)),
            });
        }
        Ok(out)
    }

    /// Remove a stored policy that nothing uses any more. False when there was none.
    fn policy_remove(&self, name: &str) -> Result<bool> {
        if policy::canned(name).is_some() {
            return refused(format!("{name} is a built-in policy and cannot be removed"));
        }
        if self.store.server_record(POLICIES, name)?.is_none() {
            return Ok(false);
        }
        for (user, r) in self.records::<UserRecord>(USERS)? {
            if r.policies.iter().any(|p| p == name) {
                return refused(format!(
                    "policy {name} is attached to user {user}; detach it first \
                     (`cybs3 admin policy detach {name} --user {user}`)"
                ));
            }
        }
        for (group, r) in self.records::<GroupRecord>(GROUPS)? {
            if r.policies.iter().any(|p| p == name) {
                return refused(format!(
                    "policy {name} is attached to group {group}; detach it first \
                     (`cybs3 admin policy detach {name} --group {group}`)"
                ));
            }
        }
        self.store.set_server_record(POLICIES, name, None)?;
        Ok(true)
    }

    fn attach(&self, policy: &str, to: &Target, on: bool) -> Result<bool> {
        if on {
            self.require_policy(policy)?;
        }
        let set = |list: &mut Vec<String>| {
            list.retain(|p| p != policy);
            if on {
                list.push(policy.to_string());
            }
        };
        match to {
            Target::User(u) => {
                let Some(mut r) = self.user(u)? else {
                    return refused(format!("there is no user {u}"));
                };
                set(&mut r.policies);
                self.put(USERS, u, Some(&r))?;
            }
            Target::Group(g) => {
                let Some(mut r) = self.group(g)? else {
                    return refused(format!("there is no group {g}"));
                };
                set(&mut r.policies);
                self.put(GROUPS, g, Some(&r))?;
            }
        }
        Ok(true)
    }

    fn group_add(&self, name: &str, policies: Vec<String>) -> Result<bool> {
        check_name("group", name)?;
        if self.group(name)?.is_some() {
            return refused(format!("group {name} already exists"));
        }
        for p in &policies {
            self.require_policy(p)?;
        }
        let rec = GroupRecord {
            policies: dedup(policies),
        };
        self.put(GROUPS, name, Some(&rec))?;
        Ok(true)
    }

    pub(crate) fn group_list(&self) -> Result<Vec<GroupInfo>> {
        let users = self.records::<UserRecord>(USERS)?;
        Ok(self
            .records::<GroupRecord>(GROUPS)?
            .into_iter()
            .map(|(name, r)| GroupInfo {
                members: users
                    .iter()
                    .filter(|(_, u)| u.groups.contains(&name))
                    .map(|(n, _)| n.clone())
                    .collect(),
                name,
                policies: r.policies,
            })
            .collect())
    }

    /// Remove a group; its members leave it. False when there was none.
    fn group_remove(&self, name: &str) -> Result<bool> {
        if self.group(name)?.is_none() {
            return Ok(false);
        }
        for (user, mut r) in self.records::<UserRecord>(USERS)? {
            if r.groups.iter().any(|g| g == name) {
                r.groups.retain(|g| g != name);
                self.put(USERS, &user, Some(&r))?;
            }
        }
        self.put::<GroupRecord>(GROUPS, name, None)?;
        Ok(true)
    }

    fn membership(&self, group: &str, user: &str, on: bool) -> Result<bool> {
        if self.group(group)?.is_none() {
            return refused(format!("there is no group {group}"));
        }
        let Some(mut r) = self.user(user)? else {
            return refused(format!("there is no user {user}"));
        };
        r.groups.retain(|g| g != group);
        if on {
            r.groups.push(group.to_string());
        }
        self.put(USERS, user, Some(&r))?;
        Ok(true)
    }

    /// The policies a local user has now (own and through groups); `None` if no such user.
    pub(crate) fn user_policies(&self, name: &str) -> Result<Option<Vec<Arc<Policy>>>> {
        let Some(r) = self.user(name)? else {
            return Ok(None);
        };
        let mut names = r.policies;
        for g in &r.groups {
            if let Some(gr) = self.group(g)? {
                names.extend(gr.policies);
            }
        }
        Ok(Some(self.policies(&names)?))
    }

    /// Who has the canonical id `id`: root, a local user, or a directory user logged in
    /// now (directory users are known to the server only through their sessions).
    /// `None` for an id nobody has, which ACL grants refuse as AWS does.
    pub(crate) fn canonical_user(&self, id: &str) -> Result<Option<CanonicalUser>> {
        let root = owners::root();
        if root.id == id {
            return Ok(Some(root));
        }
        let local = self
            .store
            .server_records(USERS)?
            .into_iter()
            .map(|(n, _)| n);
        let directory = self
            .keyring
            .owners()?
            .into_iter()
            .filter_map(|(_, o, _)| match o {
                Owner::Session(s) => s.directory_user().map(str::to_string),
                _ => None,
            });
        Ok(local
            .chain(directory)
            .map(|name| owners::user(&name))
            .find(|u| u.id == id))
    }

    /// Policies by name; a name that no longer exists grants nothing.
    pub(crate) fn policies(&self, names: &[String]) -> Result<Vec<Arc<Policy>>> {
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            match self.policy(n)? {
                Some(p) => out.push(p),
                None => tracing::warn!("policy {n} is named but does not exist; it grants nothing"),
            }
        }
        Ok(out)
    }

    /// A policy by name (canned or stored).
    pub(crate) fn policy(&self, name: &str) -> Result<Option<Arc<Policy>>> {
        if let Some(p) = canned(name) {
            return Ok(Some(p));
        }
        match self.store.server_record(POLICIES, name)? {
            Some(text) => self.parsed(name, text).map(Some),
            None => Ok(None),
        }
    }

    /// A bucket's policy, if it has one (and the bucket exists).
    pub(crate) fn bucket_policy(&self, bucket: &str) -> Result<Option<Arc<Policy>>> {
        let text = match self
            .store
            .bucket_attr(bucket, crate::identity::bucket_policy::ATTR)
        {
            Ok(Some(t)) => t,
            Ok(None) | Err(engine::Error::NoSuchBucket(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.parsed(&format!("bucket {bucket}"), text).map(Some)
    }

    /// The tags of an object version (the current one without `version_id`), for
    /// `s3:ExistingObjectTag` conditions; `None` when there is no such version.
    pub(crate) fn object_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<Vec<(String, String)>>> {
        use engine::Error as E;
        match self.store.head(bucket, key, version_id) {
            Ok(v) => Ok(Some(v.meta.tags)),
            Err(
                E::NoSuchBucket(_)
                | E::NoSuchKey(_)
                | E::NoSuchVersion(_)
                | E::DeleteMarker { .. }
                | E::InvalidKey(_),
            ) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Parse stored policy text once; `what` names it in the cache and in errors.
    fn parsed(&self, what: &str, text: Vec<u8>) -> Result<Arc<Policy>> {
        let mut parsed = self.parsed.lock().unwrap();
        if let Some((t, p)) = parsed.get(what) {
            if *t == text {
                return Ok(p.clone());
            }
        }
        let p = Policy::parse(&String::from_utf8_lossy(&text)).map_err(|e| {
            IamError::Store(engine::Error::Meta(format!("stored policy of {what}: {e}")))
        })?;
        let p = Arc::new(p.named(what));
        parsed.insert(what.to_string(), (text, p.clone()));
        Ok(p)
    }

    fn require_policy(&self, name: &str) -> Result<()> {
        if self.policy(name)?.is_none() {
            return refused(format!(
                "there is no policy {name}; add it with `cybs3 admin policy add {name} FILE.json` \
                 (built in: {})",
                policy::CANNED.join(", ")
            ));
        }
        Ok(())
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        self.get(USERS, name)
    }

    fn group(&self, name: &str) -> Result<Option<GroupRecord>> {
        self.get(GROUPS, name)
    }

    fn get<T: for<'d> Deserialize<'d>>(&self, ns: &str, name: &str) -> Result<Option<T>> {
        match self.store.server_record(ns, name)? {
            Some(v) => Ok(Some(decode(ns, &v)?)),
            None => Ok(None),
        }
    }

    fn put<T: Serialize>(&self, ns: &str, name: &str, rec: Option<&T>) -> Result<()> {
        let bytes = rec.map(|r| serde_json::to_vec(r).expect("records serialize"));
        self.store.set_server_record(ns, name, bytes)?;
        Ok(())
    }

    fn records<T: for<'d> Deserialize<'d>>(&self, ns: &str) -> Result<Vec<(String, T)>> {
        self.store
            .server_records(ns)?
            .into_iter()
            .map(|(k, v)| Ok((k, decode(ns, &v)?)))
            .collect()
    }
}

/// The canned policies, parsed once.
fn canned(name: &str) -> Option<Arc<Policy>> {
    static CANNED: std::sync::OnceLock<HashMap<&'static str, Arc<Policy>>> =
        std::sync::OnceLock::new();
    CANNED
        .get_or_init(|| {
            policy::CANNED
                .iter()
                .filter_map(|n| policy::canned(n).map(|p| (*n, Arc::new(p.named(n)))))
                .collect()
        })
        .get(name)
        .cloned()
}

fn decode<T: for<'d> Deserialize<'d>>(ns: &str, v: &[u8]) -> Result<T> {
    serde_json::from_slice(v)
        .map_err(|e| IamError::Store(engine::Error::Meta(format!("bad {ns} record: {e}"))))
}

fn document_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.to_string()))
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

/// IAM's rule for user, group and policy names: 1–64 of `A-Za-z0-9+=,.@_-`.
fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+=,.@_-".contains(&c));
    if ok {
        Ok(())
    } else {
        refused(format!(
            "invalid {kind} name {name:?}: use 1 to 64 letters, digits or + = , . @ _ -"
        ))
    }
}

fn json<T: Serialize>(v: T) -> serde_json::Value {
    serde_json::to_value(v).expect("answers serialize")
}
