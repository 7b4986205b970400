//! Prometheus' text exposition format (version 0.0.4), written by hand: families with
//! their HELP and TYPE lines, samples with escaped label values, histograms as
//! cumulative buckets with their sum and count.

use std::fmt::Write as _;

/// What a family is, as its TYPE line says.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A document being written.
#[derive(Default)]
pub(crate) struct Exposition {
    out: String,
}

impl Exposition {
    /// Start family `name` (counters end in `_total`, units are base units).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", help.replace('\\', r"\\"));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of the family just started.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// A family of one sample without labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// One histogram's samples: `counts[i]` observations at most `bounds[i]` (not yet
    /// cumulative), `count` observations in all, summing to `sum`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        (bounds, counts): (&[f64], &[u64]),
        count: u64,
        sum: f64,
    ) {
        let bucket = format!("{name}_bucket");
        let mut seen = 0;
        for (bound, n) in bounds.iter().zip(counts) {
            seen += n;
            let le = number(*bound);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, seen as f64);
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, count as f64);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value with backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: integers without a fraction, infinities as Prometheus spells them.
fn number(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_histograms() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "Things.");
        e.sample("x_total", &[("a", "q\"\\\n")], 3.0);
        e.family("h_seconds", Kind::Histogram, "Time.");
        e.histogram(
            "h_seconds",
            &[("api", "Get")],
            (&[0.5, 1.0], &[2, 1]),
            4,
            2.25,
        );
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"q\\\"\\\\\\n\"} 3\n\
             # HELP h_seconds Time.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{api=\"Get\",le=\"0.5\"} 2\n\
             h_seconds_bucket{api=\"Get\",le=\"1\"} 3\n\
             h_seconds_bucket{api=\"Get\",le=\"+Inf\"} 4\n\
             h_seconds_sum{api=\"Get\"} 2.25\nh_seconds_count{api=\"Get\"} 4\n"
        );
    }
}
