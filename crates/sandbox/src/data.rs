//! Deterministic generation helpers shared by the providers' data sets: a
//! splitmix64 PRNG, unique ids, name pools, and UTC date formatting/parsing
//! (no date crate: civil-calendar arithmetic after Howard Hinnant).

use std::fmt::Write as _;

/// The generated data ends here: 2026-03-01T00:00:00Z. A fixed anchor (not
/// "now") keeps the data identical across starts.
pub(crate) const DATA_END: i64 = 1_772_323_200;
/// The generated data covers the 180 days before [`DATA_END`].
pub(crate) const DATA_SPAN: i64 = 180 * 86_400;

/// The splitmix64 finaliser: a bijection on `u64` (distinct inputs give
/// distinct outputs), so `mix(key ^ index)` is a unique, random-looking id part.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64: small, fast and fully determined by its seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for one purpose (`stream`) of one sandbox `seed`.
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        Rng(mix(seed ^ mix(stream)))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let width = hi.saturating_sub(lo).max(0) as u64;
        lo + self.below(width.saturating_add(1)) as i64
    }

    /// `true` with probability `percent` / 100.
    pub(crate) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }
}

/// `n` start times (UNIX seconds) spread at random over the data span,
/// sorted ascending: call traffic with realistic irregular gaps.
pub(crate) fn sorted_times(rng: &mut Rng, n: usize) -> Vec<i64> {
    let start = DATA_END - DATA_SPAN;
    let mut times: Vec<i64> = (0..n).map(|_| rng.range(start, DATA_END - 3_600)).collect();
    times.sort_unstable();
    times
}

/// Lowercase hex of `value`, `digits` wide (at most 16).
pub(crate) fn hex(value: u64, digits: usize) -> String {
    let mut out = String::with_capacity(digits);
    let _ = write!(out, "{value:016x}");
    out.split_off(16 - digits.min(16))
}

pub(crate) const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Grace",
    "Katherine",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Margaret",
    "John",
    "Radia",
    "Ken",
    "Dennis",
    "Hedy",
    "Claude",
    "Annie",
    "Mary",
    "Dorothy",
    "Linus",
    "Sophie",
    "Tim",
    "Whitfield",
    "Adele",
    "Jean",
    "Leslie",
    "Niklaus",
    "Shafi",
    "Silvio",
    "Tony",
    "Vint",
    "Yukihiro",
    "Anita",
    "Evelyn",
    "Joan",
    "Kathleen",
    "Lynn",
    "Martha",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Johnson",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Hamilton",
    "Backus",
    "Perlman",
    "Thompson",
    "Ritchie",
    "Lamarr",
    "Shannon",
    "Easley",
    "Jackson",
    "Vaughan",
    "Torvalds",
    "Wilson",
    "Berners-Lee",
    "Diffie",
    "Goldberg",
    "Bartik",
    "Lamport",
    "Wirth",
    "Goldwasser",
    "Micali",
    "Hoare",
    "Cerf",
    "Matsumoto",
    "Borg",
    "Boyd",
    "Clarke",
    "Booth",
    "Conway",
    "Pollack",
];

pub(crate) const COMPANIES: &[&str] = &[
    "Globex",
    "Initech",
    "Umbrella Health",
    "Hooli",
    "Vandelay Industries",
    "Stark Logistics",
    "Wayne Foods",
    "Tyrell Systems",
    "Cyberdyne Analytics",
    "Soylent Labs",
    "Wonka Retail",
    "Oscorp Energy",
    "Massive Dynamic",
    "Pied Piper",
    "Dunder Mifflin",
    "Aperture Science",
    "Gringotts Finance",
    "Monarch Travel",
    "Nakatomi Trading",
    "Bluth Homes",
];

pub(crate) const MEETING_TOPICS: &[&str] = &[
    "Discovery call",
    "Product demo",
    "Pricing review",
    "Security questionnaire walkthrough",
    "Renewal discussion",
    "Quarterly business review",
    "Implementation kickoff",
    "Technical deep dive",
    "Contract redlines",
    "Executive alignment",
    "Onboarding check-in",
    "Expansion opportunity",
];

/// A person's name, deterministic for the draw.
pub(crate) fn person(rng: &mut Rng) -> (&'static str, &'static str) {
    (rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES))
}

/// `first.last@domain` in lowercase, without characters an address dislikes.
pub(crate) fn email(first: &str, last: &str, domain: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    format!("{}.{}@{domain}", clean(first), clean(last))
}

/// The e-mail domain of a company name: `globex.example`.
pub(crate) fn domain(company: &str) -> String {
    let name: String = company
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("{name}.example")
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// UNIX seconds → `2026-01-15T08:30:00.000Z`.
pub(crate) fn iso(secs: i64) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        s / 3_600,
        s / 60 % 60,
        s % 60
    )
}

/// Parse an ISO-8601 date or date-time into UNIX **milliseconds**:
/// `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM[:SS[.fff…]]` followed by `Z`, `±HH:MM`,
/// `±HHMM` or nothing (UTC). Anything else (including a `+` that a query
/// string decoded into a space) is `None`.
pub(crate) fn parse_iso_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let expect = |at: usize, c: u8| b.get(at) == Some(&c);
    let year = num(0, 4)?;
    if !expect(4, b'-') || !expect(7, b'-') {
        return None;
    }
    let month = u32::try_from(num(5, 2)?).ok()?;
    let day = u32::try_from(num(8, 2)?).ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Some(days * 86_400_000);
    }
    if !(expect(10, b'T') || expect(10, b't')) {
        return None;
    }
    let hour = num(11, 2)?;
    if !expect(13, b':') {
        return None;
    }
    let minute = num(14, 2)?;
    let mut at = 16;
    let mut second = 0;
    let mut millis = 0;
    if expect(at, b':') {
        second = num(at + 1, 2)?;
        at += 3;
        if expect(at, b'.') || expect(at, b',') {
            at += 1;
            let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            let mut scale = 100;
            for &c in &b[at..at + digits.min(3)] {
                millis += i64::from(c - b'0') * scale;
                scale /= 10;
            }
            at += digits;
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset_min = match b.get(at) {
        None => 0,
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = num(at + 1, 2)?;
            let (om, end) = if expect(at + 3, b':') {
                (num(at + 4, 2)?, at + 6)
            } else {
                (num(at + 3, 2)?, at + 5)
            };
            if end != b.len() || oh > 23 || om > 59 {
                return None;
            }
            let total = oh * 60 + om;
            if sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1_000 + millis)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Midnight (UNIX seconds) of the Sunday that starts the GMT week holding `secs`.
pub(crate) fn week_start(secs: i64) -> i64 {
    let day = secs.div_euclid(86_400);
    // 1970-01-01 was a Thursday: (day + 4) % 7 is 0 on Sundays.
    (day - (day + 4).rem_euclid(7)) * 86_400
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_streams_differ() {
        let a: Vec<u64> = (0..5)
            .scan(Rng::new(7, 1), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::new(7, 1), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..5)
            .scan(Rng::new(7, 2), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut r = Rng::new(1, 1);
        for _ in 0..1_000 {
            assert!(r.below(10) < 10);
            let v = r.range(-3, 3);
            assert!((-3..=3).contains(&v));
        }
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn mix_is_injective_on_a_sample() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000u64 {
            assert!(seen.insert(mix(i ^ 0xdead_beef)));
        }
        assert_eq!(hex(0xabc, 4), "0abc");
        assert_eq!(hex(u64::MAX, 16), "ffffffffffffffff");
    }

    #[test]
    fn iso_round_trips() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(DATA_END), "2026-03-01T00:00:00.000Z");
        assert_eq!(iso(951_782_400), "2000-02-29T00:00:00.000Z");
        for secs in [0, 86_399, 951_782_400, DATA_END - 1, 4_102_444_800] {
            assert_eq!(parse_iso_ms(&iso(secs)), Some(secs * 1_000), "{secs}");
        }
    }

    #[test]
    fn parse_iso_accepts_the_usual_forms_only() {
        let base = DATA_END * 1_000;
        assert_eq!(parse_iso_ms("2026-03-01"), Some(base));
        assert_eq!(parse_iso_ms("2026-03-01T00:00Z"), Some(base));
        assert_eq!(parse_iso_ms("2026-03-01T00:00:00"), Some(base));
        assert_eq!(parse_iso_ms("2026-03-01T00:00:00.250Z"), Some(base + 250));
        assert_eq!(
            parse_iso_ms("2026-03-01T00:00:00.123456Z"),
            Some(base + 123)
        );
        assert_eq!(
            parse_iso_ms("2026-03-01T02:00:00+02:00"),
            Some(base),
            "offset"
        );
        assert_eq!(parse_iso_ms("2026-02-28T22:00:00-0200"), Some(base));
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-30",
            "2026-03-01T24:00:00Z",
            "2026-03-01 00:00:00",
            "2026-03-01T00:00:00 00:00",
            "2026-03-01T00:00:00Zjunk",
            "2026-03-01T00:00:00.Z",
            "yesterday",
            "1772323200",
        ] {
            assert_eq!(parse_iso_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn weeks_start_on_sunday_midnight_gmt() {
        // 2026-03-01 is a Sunday.
        assert_eq!(week_start(DATA_END), DATA_END);
        assert_eq!(week_start(DATA_END - 1), DATA_END - 7 * 86_400);
        assert_eq!(week_start(DATA_END + 6 * 86_400 + 86_399), DATA_END);
        assert_eq!(week_start(DATA_END + 7 * 86_400), DATA_END + 7 * 86_400);
    }
}
