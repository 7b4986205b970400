//! `--exclude`/`--include` filters of `cybs3 sync`, in command-line order.

use clap::{Arg, ArgAction, ArgMatches};
use globset::{Glob, GlobMatcher};

/// `--exclude`/`--include` in command-line order. clap's derive keeps each flag's values
/// apart, and the order between the two flags decides (the last matching filter wins), so
/// this reads their positions with `ArgMatches::indices_of`.
#[derive(Debug, Default)]
pub(super) struct Filters(Vec<Rule>);

#[derive(Debug)]
pub(super) struct Rule {
    pub(super) include: bool,
    pub(super) glob: GlobMatcher,
}

impl Filters {
    pub(super) fn allows(&self, rel: &str) -> bool {
        self.0
            .iter()
            .rev()
            .find(|r| r.glob.is_match(rel))
            .is_none_or(|r| r.include)
    }
}

pub(super) fn parse_glob(s: &str) -> Result<GlobMatcher, String> {
    Glob::new(s)
        .map(|g| g.compile_matcher())
        .map_err(|e| e.to_string())
}

impl clap::FromArgMatches for Filters {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut rules = Vec::new();
        for (id, include) in [("exclude", false), ("include", true)] {
            if let (Some(globs), Some(at)) = (m.get_many::<GlobMatcher>(id), m.indices_of(id)) {
                rules.extend(at.zip(globs).map(|(i, g)| (i, include, g.clone())));
            }
        }
        rules.sort_by_key(|r| r.0);
        Ok(Filters(
            rules
                .into_iter()
                .map(|(_, include, glob)| Rule { include, glob })
                .collect(),
        ))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for Filters {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let arg = |id: &'static str, help: &'static str| {
            Arg::new(id)
                .long(id)
                .value_name("GLOB")
                .action(ArgAction::Append)
                .value_parser(parse_glob)
                .help(help)
        };
        cmd.arg(arg(
            "exclude",
            "Leave out paths matching GLOB (repeatable; see below)",
        ))
        .arg(arg(
            "include",
            "Take back paths matching GLOB that an earlier --exclude left out",
        ))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}
