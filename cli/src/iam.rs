//! `cybs3 admin user|policy|group`: users, IAM policies and groups, through the running
//! server's management socket or, when it is stopped, on the store directly.

use crate::admin;
use crate::server::{open_stopped, store_dir};
use anyhow::{bail, Context, Result};
use hyper::Method;
use s3d::{GroupInfo, Iam, IamCall, NewUser, PolicyInfo, Target, UserInfo};
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct DataArg {
    /// The server's data directory
    #[arg(long, value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user with an access key (its secret is printed once)
    Add {
        name: String,
        /// A policy the user gets (built in: readonly, readwrite, writeonly, admin); repeatable
        #[arg(long = "policy", value_name = "POLICY")]
        policies: Vec<String>,
        /// A group the user joins; repeatable
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List users with their keys, policies and groups (never secrets)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a user; their keys and sessions stop working at once
    Remove { name: String },
}

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCmd {
    /// Add (or replace) a named policy from an AWS IAM JSON file
    Add { name: String, file: PathBuf },
    /// List policies, built-in ones included
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a policy that no user or group has
    Remove { name: String },
    /// Give a policy to a user or a group
    Attach {
        policy: String,
        #[command(flatten)]
        to: TargetArgs,
    },
    /// Take a policy from a user or a group
    Detach {
        policy: String,
        #[command(flatten)]
        to: TargetArgs,
    },
}

#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
}

impl TargetArgs {
    fn target(self) -> Target {
        match (self.user, self.group) {
            (Some(u), _) => Target::User(u),
            (None, Some(g)) => Target::Group(g),
            (None, None) => unreachable!("clap requires --user or --group"),
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum GroupCmd {
    /// Add a group whose members get its policies
    Add {
        name: String,
        #[arg(long = "policy", value_name = "POLICY")]
        policies: Vec<String>,
    },
    /// List groups with their policies and members
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a group (its members leave it)
    Remove { name: String },
    /// Put a user into a group
    AddUser { group: String, user: String },
    /// Take a user out of a group
    RemoveUser { group: String, user: String },
}

pub fn user(cmd: UserCmd, data: DataArg) -> Result<()> {
    match cmd {
        UserCmd::Add {
            name,
            policies,
            groups,
            json,
        } => {
            let v = call(
                data,
                IamCall::UserAdd {
                    name,
                    policies,
                    groups,
                },
            )?;
            let u: NewUser = serde_json::from_value(v)?;
            if json {
                println!("{}", serde_json::to_string(&u)?);
            } else {
                println!("user:       {}", u.name);
                println!("access key: {}", u.access_key);
                println!("secret key: {}", u.secret_key);
                println!("policies:   {}", list_or_none(&u.policies));
                println!("groups:     {}", list_or_none(&u.groups));
                println!("canonical id: {}", u.canonical_id);
                println!("(the secret is shown only now)");
            }
        }
        UserCmd::List { json } => {
            let users: Vec<UserInfo> = serde_json::from_value(call(data, IamCall::UserList)?)?;
            if json {
                println!("{}", serde_json::to_string(&users)?);
            } else {
                for u in users {
                    println!(
                        "{}  keys: {}  policies: {}  groups: {}",
                        u.name,
                        list_or_none(&u.access_keys),
                        list_or_none(&u.policies),
                        list_or_none(&u.groups)
                    );
                }
            }
        }
        UserCmd::Remove { name } => {
            if call(data, IamCall::UserRemove { name: name.clone() })? != true {
                bail!("there is no user {name}; `cybs3 admin user list` shows them");
            }
        }
    }
    Ok(())
}

pub fn policy(cmd: PolicyCmd, data: DataArg) -> Result<()> {
    match cmd {
        PolicyCmd::Add { name, file } => {
            let document = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            call(data, IamCall::PolicyAdd { name, document })?;
        }
        PolicyCmd::List { json } => {
            let policies: Vec<PolicyInfo> =
                serde_json::from_value(call(data, IamCall::PolicyList)?)?;
            if json {
                println!("{}", serde_json::to_string(&policies)?);
            } else {
                for p in policies {
                    let kind = if p.builtin { "built in" } else { "stored" };
                    println!("{}  ({kind})", p.name);
                }
            }
        }
        PolicyCmd::Remove { name } => {
            if call(data, IamCall::PolicyRemove { name: name.clone() })? != true {
                bail!("there is no policy {name}; `cybs3 admin policy list` shows them");
            }
        }
        PolicyCmd::Attach { policy, to } => {
            call(
                data,
                IamCall::PolicyAttach {
                    policy,
                    to: to.target(),
                },
            )?;
        }
        PolicyCmd::Detach { policy, to } => {
            call(
                data,
                IamCall::PolicyDetach {
                    policy,
                    to: to.target(),
                },
            )?;
        }
    }
    Ok(())
}

pub fn group(cmd: GroupCmd, data: DataArg) -> Result<()> {
    match cmd {
        GroupCmd::Add { name, policies } => {
            call(data, IamCall::GroupAdd { name, policies })?;
        }
        GroupCmd::List { json } => {
            let groups: Vec<GroupInfo> = serde_json::from_value(call(data, IamCall::GroupList)?)?;
            if json {
                println!("{}", serde_json::to_string(&groups)?);
            } else {
                for g in groups {
                    println!(
                        "{}  policies: {}  members: {}",
                        g.name,
                        list_or_none(&g.policies),
                        list_or_none(&g.members)
                    );
                }
            }
        }
        GroupCmd::Remove { name } => {
            if call(data, IamCall::GroupRemove { name: name.clone() })? != true {
                bail!("there is no group {name}; `cybs3 admin group list` shows them");
            }
        }
        GroupCmd::AddUser { group, user } => {
            call(data, IamCall::GroupAddUser { group, user })?;
        }
        GroupCmd::RemoveUser { group, user } => {
            call(data, IamCall::GroupRemoveUser { group, user })?;
        }
    }
    Ok(())
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        v.join(",")
    }
}

/// Ask the running server, or apply the call to the stopped store.
fn call(data: DataArg, call: IamCall) -> Result<serde_json::Value> {
    let dir = store_dir(data.data);
    if dir.running()?.is_some() {
        let body = serde_json::to_value(&call)?;
        return crate::block_on(admin::call(&dir.socket(), Method::POST, "/iam", Some(body)));
    }
    let store = open_stopped(&dir)?;
    Ok(Iam::new(store, &dir.ensure_server_key()?).apply(call)?)
}
