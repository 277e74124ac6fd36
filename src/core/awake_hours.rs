//! Office hours (`awake_hours: Mon-Fri 07:00-20:00 Europe/Berlin`): when previews may be awake.
//! Outside them the lifecycle pass puts every preview to sleep, and wakes those it put to sleep
//! for this reason when they begin. Time zones come from the IANA database (chrono-tz).

use std::time::SystemTime;

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

/// Days of the week, a daily window and a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwakeHours {
    days: [bool; 7],
    start: NaiveTime,
    end: NaiveTime,
    zone: Tz,
    text: String,
}

const FORM: &str = "DAYS HH:MM-HH:MM ZONE, e.g. `Mon-Fri 07:00-20:00 Europe/Berlin` \
                    (days: Mon..Sun, ranges like Mon-Fri, lists like Mon,Wed,Fri, or daily)";

fn weekday(s: &str) -> Option<usize> {
    const SHORT: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let s = s.to_ascii_lowercase();
    SHORT
        .iter()
        .position(|d| *d == s)
        .or_else(|| FULL.iter().position(|d| *d == s))
}

fn parse_days(s: &str) -> Option<[bool; 7]> {
    let mut days = [false; 7];
    if s.eq_ignore_ascii_case("daily") {
        return Some([true; 7]);
    }
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (weekday(a)?, weekday(b)?);
                // Mon-Fri; a wrapping range like Fri-Mon covers the weekend.
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[weekday(part)?] = true,
        }
    }
    Some(days)
}

impl AwakeHours {
    /// Parse the configuration value; the error says what the accepted form is.
    pub fn parse(value: &str) -> Result<AwakeHours, String> {
        let words: Vec<&str> = value.split_whitespace().collect();
        let [days, window, zone] = words.as_slice() else {
            return Err(format!("{value:?} is not {FORM}"));
        };
        let days = parse_days(days).ok_or_else(|| format!("{days:?} names no days: {FORM}"))?;
        let (start, end) = window
            .split_once('-')
            .and_then(|(a, b)| {
                Some((
                    NaiveTime::parse_from_str(a, "%H:%M").ok()?,
                    NaiveTime::parse_from_str(b, "%H:%M").ok()?,
                ))
            })
            .ok_or_else(|| format!("{window:?} is not a window like 07:00-20:00"))?;
        if start == end {
            return Err(format!("{window:?} is an empty window: {FORM}"));
        }
        let zone: Tz = zone.parse().map_err(|_| {
            format!("{zone:?} is not a time zone of the IANA database (like Europe/Berlin or UTC)")
        })?;
        Ok(AwakeHours {
            days,
            start,
            end,
            zone,
            text: value.trim().to_string(),
        })
    }

    /// Whether `t` lies inside the awake hours (local time in the zone). A window that ends
    /// before it starts (`22:00-06:00`) runs past midnight and belongs to the day it starts.
    pub fn is_awake(&self, t: SystemTime) -> bool {
        let local = DateTime::<Utc>::from(t).with_timezone(&self.zone);
        let now = NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second())
            .unwrap_or(NaiveTime::MIN);
        let day = local.weekday().num_days_from_monday() as usize;
        if self.start < self.end {
            self.days[day] && now >= self.start && now < self.end
        } else {
            let yesterday = (day + 6) % 7;
            (self.days[day] && now >= self.start) || (self.days[yesterday] && now < self.end)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn parses_and_judges_times_in_the_zone() {
        let h = AwakeHours::parse("Mon-Fri 07:00-20:00 Europe/Berlin").unwrap();
        // 2026-11-30 is a Monday; Berlin is UTC+1 in winter.
        let cases = [
            ("2026-11-30T05:59:00Z", false), // 06:59 Berlin
            ("2026-11-30T06:00:00Z", true),  // 07:00
            ("2026-11-30T18:59:00Z", true),  // 19:59
            ("2026-11-30T19:00:00Z", false), // 20:00
            ("2026-12-05T10:00:00Z", false), // Saturday
            ("2026-07-06T05:30:00Z", true),  // a summer Monday: 07:30 CEST
        ];
        for (t, want) in cases {
            assert_eq!(h.is_awake(at(t)), want, "{t}");
        }
    }

    #[test]
    fn lists_wrapping_ranges_and_night_windows() {
        let h = AwakeHours::parse("Mon,Wed 22:00-06:00 UTC").unwrap();
        assert!(h.is_awake(at("2026-11-30T23:00:00Z"))); // Monday night
        assert!(h.is_awake(at("2026-12-01T05:00:00Z"))); // Tuesday early, Monday's window
        assert!(!h.is_awake(at("2026-12-01T23:00:00Z"))); // Tuesday night
        let weekend = AwakeHours::parse("Sat-Sun 00:00-23:59 UTC").unwrap();
        assert!(weekend.is_awake(at("2026-12-05T12:00:00Z")));
        assert!(!weekend.is_awake(at("2026-12-04T12:00:00Z")));
        assert!(AwakeHours::parse("daily 08:00-18:00 America/New_York").is_ok());
    }

    #[test]
    fn bad_values_say_what_is_accepted() {
        for bad in [
            "",
            "Mon-Fri 07:00-20:00",
            "Mon-Fri 07:00-20:00 Mars/Olympus",
            "Funday 07:00-20:00 UTC",
            "Mon-Fri 7-20 UTC",
            "Mon-Fri 25:00-20:00 UTC",
            "Mon-Fri 08:00-08:00 UTC",
            "Mo-Fr 08:00-18:00 UTC extra",
        ] {
            let e = AwakeHours::parse(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad:?}");
        }
        assert!(AwakeHours::parse("Mon-Fri 07:00-20:00 Mars/Olympus")
            .unwrap_err()
            .contains("IANA"));
    }
}
