//! What the mount learns of how each directory's files are read, to guess which will be
//! opened next ([`crate::warm`] prefetches them). Plain statistics, each explainable:
//!
//! - successors: after file A was opened, which file of the same directory was opened
//!   next, as counts that halve at each new observation from A (the latest order
//!   weighs most: a build run twice repeats its last order);
//! - in order: how often opens follow the directory's name order (the next name or the
//!   one after it), as a decayed rate (a photo viewer paging through a directory);
//! - per file: opens, decayed with the time since the last one (frequency and recency),
//!   and whether its reads took it whole or in part;
//! - per directory: how often its guesses were right (the next open there was one of
//!   them), as a decayed rate, kept also while no guess is prefetched: a directory
//!   whose guesses keep missing (random access) is not prefetched until they hit
//!   again. A prefetch thrown away unread weakens the successor counts that made it.
//!
//! Time is counted in opens (one tick each, mount-wide), not seconds: what matters is
//! what else was read in between.

use std::collections::HashMap;

/// How many files ahead are guessed at most.
pub(crate) const AHEAD: usize = 3;
/// What a successor count keeps of itself at each new observation from its file.
const SUCCESSOR_DECAY: f32 = 0.5;
/// What the in-order rate keeps of its past at each open.
const ORDER_DECAY: f32 = 0.9;
/// A successor is guessed when it took at least this share of its file's successor
/// counts...
const SUCCESSOR_SHARE: f32 = 0.6;
/// ...and was seen lately (a count that halved twice since is too old).
const SUCCESSOR_MIN: f32 = 0.3;
/// Opens follow name order at least this often (decayed rate)...
const ORDER_RATE: f32 = 0.7;
/// ...over at least about two observations.
const ORDER_SEEN: f32 = 1.5;
/// A directory's guesses are prefetched while at least this share of them hits
/// (counted with one hit and one miss assumed, so a new directory starts at 1/2).
const ACCURACY: f32 = 0.4;
/// What the hit and miss counts keep of their past at each judged open.
const ACCURACY_DECAY: f32 = 0.95;
/// Opens (ticks) after which a file's open count counts half.
const HALF_LIFE: f32 = 512.0;
/// Directories tracked at most; the least recently opened is forgotten first.
const DIRS: usize = 4096;
/// Files tracked per directory at most; past it the directory starts over.
const FILES: usize = 65536;

#[derive(Default)]
struct File {
    /// Opens, decayed to `last`.
    opens: f32,
    /// The tick of the last open.
    last: u64,
    whole: u32,
    partial: u32,
}

#[derive(Default)]
struct Dir {
    /// The file opened last here.
    last: Option<String>,
    /// The tick of the last open here.
    at: u64,
    /// Successor counts: file → the file opened after it → count.
    next: HashMap<String, HashMap<String, f32>>,
    /// Decayed counts of opens that followed name order, and of opens after another.
    in_order: f32,
    seen: f32,
    files: HashMap<String, File>,
    /// The guesses made at the last open here, and decayed counts of opens that were
    /// one of the guesses before them, or none.
    guessed: Vec<String>,
    hits: f32,
    misses: f32,
}

impl Dir {
    fn accuracy(&self) -> f32 {
        (self.hits + 1.0) / (self.hits + self.misses + 2.0)
    }

    /// The successor of `name` that the counts agree on, if they do.
    fn successor(&self, name: &str) -> Option<&str> {
        let counts = self.next.get(name)?;
        let total: f32 = counts.values().sum();
        let (best, n) = counts
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
        (*n >= SUCCESSOR_MIN && *n >= SUCCESSOR_SHARE * total).then_some(best.as_str())
    }

    fn reads_in_part(&self, name: &str) -> bool {
        self.files.get(name).is_some_and(|f| f.partial > f.whole)
    }
}

/// The names of a directory's files after a name, in name order: the listing's.
pub(crate) type After<'a> = &'a dyn Fn(&str, usize) -> Vec<String>;

/// The statistics of every directory the mount read from.
#[derive(Default)]
pub(crate) struct Stats {
    dirs: HashMap<String, Dir>,
    tick: u64,
}

impl Stats {
    /// Records that `name` of `dir` was opened for reading; answers the files of `dir`
    /// likely to be opened next, most likely first, at most [`AHEAD`]. `after` gives the
    /// listing's names after a name.
    pub(crate) fn opened(&mut self, dir: &str, name: &str, after: After<'_>) -> Vec<String> {
        self.tick += 1;
        let tick = self.tick;
        if !self.dirs.contains_key(dir) && self.dirs.len() >= DIRS {
            self.forget_oldest();
        }
        let d = self.dirs.entry(dir.to_string()).or_default();
        if d.files.len() >= FILES {
            *d = Dir::default();
        }
        d.at = tick;
        let f = d.files.entry(name.to_string()).or_default();
        f.opens = decayed(f.opens, tick - f.last) + 1.0;
        f.last = tick;
        if let Some(last) = d.last.take().filter(|l| l != name) {
            d.in_order *= ORDER_DECAY;
            d.seen *= ORDER_DECAY;
            d.seen += 1.0;
            if after(&last, 2).iter().any(|n| n == name) {
                d.in_order += 1.0;
            }
            let counts = d.next.entry(last).or_default();
            counts.values_mut().for_each(|c| *c *= SUCCESSOR_DECAY);
            *counts.entry(name.to_string()).or_default() += 1.0;
        }
        d.last = Some(name.to_string());
        if !d.guessed.is_empty() {
            d.hits *= ACCURACY_DECAY;
            d.misses *= ACCURACY_DECAY;
            match d.guessed.iter().any(|g| g == name) {
                true => d.hits += 1.0,
                false => d.misses += 1.0,
            }
        }
        // The learned chain first: it is this directory's own order.
        let mut guesses: Vec<String> = Vec::new();
        let mut from = name.to_string();
        while guesses.len() < AHEAD {
            let next = d
                .successor(&from)
                .filter(|s| *s != name && !guesses.iter().any(|g| g == s));
            let Some(next) = next.map(str::to_string) else {
                break;
            };
            from = next.clone();
            guesses.push(next);
        }
        if d.seen >= ORDER_SEEN && d.in_order >= ORDER_RATE * d.seen {
            for n in after(name, AHEAD) {
                if guesses.len() < AHEAD && !guesses.contains(&n) {
                    guesses.push(n);
                }
            }
        }
        guesses.retain(|g| !d.reads_in_part(g));
        d.guessed = guesses.clone();
        match d.accuracy() >= ACCURACY {
            true => guesses,
            false => Vec::new(),
        }
    }

    /// Records how a handle of `name` read it: whole, or in part.
    pub(crate) fn read(&mut self, dir: &str, name: &str, whole: bool) {
        let Some(f) = self.dirs.get_mut(dir).and_then(|d| d.files.get_mut(name)) else {
            return;
        };
        match whole {
            true => f.whole += 1,
            false => f.partial += 1,
        }
    }

    /// Records that a prefetch of `name` was thrown away unread: the successor counts
    /// that led to it are halved.
    pub(crate) fn wasted(&mut self, dir: &str, name: &str) {
        let Some(d) = self.dirs.get_mut(dir) else {
            return;
        };
        for counts in d.next.values_mut() {
            if let Some(c) = counts.get_mut(name) {
                *c *= 0.5;
            }
        }
    }

    /// What keeping `name` of `dir` in the read cache is worth: its opens, decayed to
    /// now, counted double when it is read whole. Files read often stay; a file read
    /// once in a long scan is soon worth little.
    pub(crate) fn worth(&self, dir: &str, name: &str) -> f32 {
        let Some(f) = self.dirs.get(dir).and_then(|d| d.files.get(name)) else {
            return 0.0;
        };
        let opens = decayed(f.opens, self.tick - f.last);
        match f.whole >= f.partial {
            true => 2.0 * opens,
            false => opens,
        }
    }

    fn forget_oldest(&mut self) {
        if let Some(oldest) = self
            .dirs
            .iter()
            .min_by_key(|(_, d)| d.at)
            .map(|(k, _)| k.clone())
        {
            self.dirs.remove(&oldest);
        }
    }
}

/// `n` after `ticks` more opens elsewhere.
fn decayed(n: f32, ticks: u64) -> f32 {
    n * (-(ticks as f32) / HALF_LIFE).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory listing `a`..`z`.
    fn after(name: &str, n: usize) -> Vec<String> {
        (b'a'..=b'z')
            .map(|c| (c as char).to_string())
            .filter(|c| c.as_str() > name)
            .take(n)
            .collect()
    }

    #[test]
    fn reading_in_name_order_guesses_the_next_names() {
        let mut s = Stats::default();
        assert!(s.opened("d", "a", &after).is_empty());
        assert!(
            s.opened("d", "b", &after).is_empty(),
            "one step is no order"
        );
        assert_eq!(s.opened("d", "c", &after), ["d", "e", "f"]);
    }

    #[test]
    fn an_order_seen_once_is_repeated() {
        let mut s = Stats::default();
        for n in ["q", "c", "x", "a"] {
            s.opened("d", n, &after);
        }
        s.opened("e", "z", &after); // elsewhere meanwhile
        assert_eq!(s.opened("d", "q", &after), ["c", "x", "a"]);
    }

    #[test]
    fn missed_guesses_stop_the_guessing_until_they_hit_again() {
        let mut s = Stats::default();
        for n in ["a", "b", "c"] {
            s.opened("d", n, &after);
        }
        // Guessed d, e, f after c each time; opened elsewhere in the directory.
        for n in ["q", "c", "x", "c"] {
            s.opened("d", n, &after);
        }
        assert!(s.opened("d", "m", &after).is_empty());
        for n in ["n", "o", "p", "q", "r", "s", "t"] {
            s.opened("d", n, &after);
        }
        assert_eq!(s.opened("d", "u", &after), ["v", "w", "x"]);
    }

    #[test]
    fn a_wasted_prefetch_weakens_its_successor() {
        let mut s = Stats::default();
        for n in ["q", "c", "q"] {
            s.opened("d", n, &after);
        }
        s.wasted("d", "c");
        s.wasted("d", "c");
        assert!(s.opened("d", "q", &after).is_empty());
    }

    #[test]
    fn files_read_in_part_are_not_guessed() {
        let mut s = Stats::default();
        s.opened("d", "e", &after);
        s.read("d", "e", false);
        for n in ["a", "b", "c"] {
            s.opened("d", n, &after);
        }
        assert_eq!(s.opened("d", "d", &after), ["f", "g"]);
    }

    #[test]
    fn worth_grows_with_opens_and_whole_reads_and_fades() {
        let mut s = Stats::default();
        s.opened("d", "often", &after);
        s.read("d", "often", true);
        s.opened("d", "often", &after);
        s.opened("d", "once", &after);
        s.read("d", "once", false);
        assert!(s.worth("d", "often") > 3.0 * s.worth("d", "once"));
        let before = s.worth("d", "often");
        for _ in 0..512 {
            s.opened("e", "x", &after);
        }
        assert!((s.worth("d", "often") - before / 2.0).abs() < 0.01);
    }
}
