//! Dates in conditions (`DateEquals`, `DateLessThan`, ...): epoch seconds or ISO 8601.

/// Milliseconds since the Unix epoch, from epoch seconds or ISO 8601
/// (`YYYY-MM-DD[Thh:mm[:ss[.fff]]][Z|±hh:mm]`, UTC when no offset is given).
pub(super) fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    let mut c = Cursor(s);
    let days = c.date()?;
    let millis = if c.0.is_empty() {
        0
    } else {
        if !c.eat('T') && !c.eat('t') && !c.eat(' ') {
            return None;
        }
        let time = c.time()?;
        time - c.offset()?
    };
    c.0.is_empty().then_some(days * 86_400_000 + millis)
}

/// A tiny left-to-right scanner over the remaining date text.
pub(super) struct Cursor<'a>(&'a str);

impl Cursor<'_> {
    pub(super) fn eat(&mut self, c: char) -> bool {
        match self.0.strip_prefix(c) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// Exactly `n` ASCII digits, at most `max`.
    pub(super) fn digits(&mut self, n: usize, max: i64) -> Option<i64> {
        let head = self.0.get(..n)?;
        if !head.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.0 = &self.0[n..];
        head.parse::<i64>().ok().filter(|v| *v <= max)
    }

    /// `YYYY-MM-DD` as days since the epoch (a real calendar day, as `time` knows them).
    pub(super) fn date(&mut self) -> Option<i64> {
        let year = self.digits(4, 9999)?;
        self.eat('-').then_some(())?;
        let month = self.digits(2, 12)?;
        self.eat('-').then_some(())?;
        let day = self.digits(2, 31)?;
        let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
        let date = time::Date::from_calendar_date(
            i32::try_from(year).ok()?,
            month,
            u8::try_from(day).ok()?,
        )
        .ok()?;
        Some(
            date.midnight()
                .assume_utc()
                .unix_timestamp()
                .div_euclid(86_400),
        )
    }

    /// `hh:mm[:ss[.fraction]]` as milliseconds into the day.
    pub(super) fn time(&mut self) -> Option<i64> {
        let hours = self.digits(2, 23)?;
        self.eat(':').then_some(())?;
        let minutes = self.digits(2, 59)?;
        let mut millis = (hours * 60 + minutes) * 60_000;
        if self.eat(':') {
            millis += self.digits(2, 60)? * 1000;
            if self.eat('.') {
                millis += self.fraction_millis()?;
            }
        }
        Some(millis)
    }

    pub(super) fn fraction_millis(&mut self) -> Option<i64> {
        let len = self.0.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let (frac, rest) = self.0.split_at(len);
        self.0 = rest;
        // Pad or truncate to three digits: sub-millisecond precision is ignored.
        let padded: String = frac.chars().chain("00".chars()).take(3).collect();
        padded.parse().ok()
    }

    /// `Z`, `±hh:mm`, `±hhmm` or nothing (UTC), as milliseconds east of UTC.
    pub(super) fn offset(&mut self) -> Option<i64> {
        if self.0.is_empty() || self.eat('Z') || self.eat('z') {
            return Some(0);
        }
        let sign = if self.eat('+') {
            1
        } else if self.eat('-') {
            -1
        } else {
            return None;
        };
        let hours = self.digits(2, 23)?;
        self.eat(':');
        let minutes = self.digits(2, 59)?;
        Some(sign * (hours * 60 + minutes) * 60_000)
    }
}
