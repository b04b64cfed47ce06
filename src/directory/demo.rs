//! `frontdesk demo-data`: a realistic synthetic directory in the import's
//! CSV format. Deterministic for a seed; written streaming, so a million
//! companies take constant memory.
//!
//! Every address and phone number is valid for its country: postal codes
//! and numbers are drawn from each country's shape and then checked with the
//! same validators the import uses (and drawn again if they fail).

use std::path::Path;

use anyhow::Context as _;
use fake::{faker, Fake};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};

use crate::domain::{self, Phone};

struct Country {
    code: &'static str,
    suffix: &'static str,
    cities: &'static [(&'static str, &'static str)],
    /// National prefixes (with country code) a phone number starts with.
    phone_prefixes: &'static [&'static str],
    /// Digits after the prefix.
    phone_digits: usize,
    postal: fn(&mut StdRng) -> String,
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10))).collect()
}

fn letters(rng: &mut StdRng, from: &[u8], n: usize) -> String {
    (0..n).map(|_| char::from(*from.choose(rng).expect("non-empty"))).collect()
}

const COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        suffix: "Inc.",
        cities: &[("New York", "NY"), ("San Francisco", "CA"), ("Chicago", "IL"), ("Seattle", "WA")],
        phone_prefixes: &["+1 212", "+1 415", "+1 312", "+1 206"],
        phone_digits: 7,
        postal: |r| format!("{}", r.gen_range(10001..99950)),
    },
    Country {
        code: "CA",
        suffix: "Ltd.",
        cities: &[("Toronto", "ON"), ("Vancouver", "BC"), ("Montreal", "QC")],
        phone_prefixes: &["+1 416", "+1 604", "+1 514"],
        phone_digits: 7,
        postal: |r| {
            let l = b"ABCEGHJKLMNPRSTVXY";
            format!(
                "{}{}{} {}{}{}",
                letters(r, l, 1),
                digits(r, 1),
                letters(r, l, 1),
                digits(r, 1),
                letters(r, l, 1),
                digits(r, 1)
            )
        },
    },
    Country {
        code: "GB",
        suffix: "Ltd",
        cities: &[("London", ""), ("Manchester", ""), ("Birmingham", "")],
        phone_prefixes: &["+44 20 7946", "+44 161 496", "+44 121 496"],
        phone_digits: 4,
        postal: |r| {
            let outward = ["EC1A", "W1A", "SW1A", "M1", "B33", "N1", "E14"].choose(r).expect("non-empty").to_string();
            format!("{outward} {}{}", digits(r, 1), letters(r, b"ABDEFGHJLNPQRSTUWXYZ", 2))
        },
    },
    Country {
        code: "DE",
        suffix: "GmbH",
        cities: &[("Berlin", ""), ("München", "Bayern"), ("Hamburg", ""), ("Köln", "NRW")],
        phone_prefixes: &["+49 30", "+49 89", "+49 40", "+49 221"],
        phone_digits: 7,
        postal: |r| format!("{:05}", r.gen_range(10115..99998)),
    },
    Country {
        code: "FR",
        suffix: "SAS",
        cities: &[("Paris", ""), ("Lyon", ""), ("Toulouse", "")],
        phone_prefixes: &["+33 1", "+33 4", "+33 5"],
        phone_digits: 8,
        postal: |r| format!("{:05}", r.gen_range(10000..95999)),
    },
    Country {
        code: "NL",
        suffix: "B.V.",
        cities: &[("Amsterdam", ""), ("Rotterdam", ""), ("Utrecht", "")],
        phone_prefixes: &["+31 20", "+31 10", "+31 30"],
        phone_digits: 7,
        postal: |r| format!("{} {}", r.gen_range(1000..9999), letters(r, b"ABCEGHJKLMNPRTVWXZ", 2)),
    },
    Country {
        code: "JP",
        suffix: "K.K.",
        cities: &[("Tokyo", "Tokyo"), ("Osaka", "Osaka"), ("Yokohama", "Kanagawa")],
        phone_prefixes: &["+81 3", "+81 6", "+81 45"],
        phone_digits: 8,
        postal: |r| format!("{}-{}", digits(r, 3), digits(r, 4)),
    },
    Country {
        code: "AU",
        suffix: "Pty Ltd",
        cities: &[("Sydney", "NSW"), ("Melbourne", "VIC"), ("Brisbane", "QLD")],
        phone_prefixes: &["+61 2 9", "+61 3 9", "+61 7 3"],
        phone_digits: 7,
        postal: |r| format!("{}", r.gen_range(2000..4999)),
    },
    Country {
        code: "IN",
        suffix: "Pvt Ltd",
        cities: &[("Mumbai", "Maharashtra"), ("Bengaluru", "Karnataka"), ("New Delhi", "Delhi")],
        phone_prefixes: &["+91 22 2", "+91 80 2", "+91 11 2"],
        phone_digits: 7,
        postal: |r| format!("{}", r.gen_range(110001..560100)),
    },
    Country {
        code: "BR",
        suffix: "Ltda.",
        cities: &[("São Paulo", "SP"), ("Rio de Janeiro", "RJ")],
        phone_prefixes: &["+55 11 3", "+55 21 3"],
        phone_digits: 7,
        postal: |r| format!("{}-{}", digits(r, 5), digits(r, 3)),
    },
    Country {
        code: "SG",
        suffix: "Pte Ltd",
        cities: &[("Singapore", "")],
        phone_prefixes: &["+65 6"],
        phone_digits: 7,
        postal: |r| format!("{:06}", r.gen_range(10000..829999)),
    },
    Country {
        code: "ES",
        suffix: "S.L.",
        cities: &[("Madrid", ""), ("Barcelona", "")],
        phone_prefixes: &["+34 91", "+34 93"],
        phone_digits: 7,
        postal: |r| format!("{:05}", r.gen_range(1001..52080)),
    },
    Country {
        code: "SE",
        suffix: "AB",
        cities: &[("Stockholm", ""), ("Göteborg", "")],
        phone_prefixes: &["+46 8", "+46 31"],
        phone_digits: 7,
        postal: |r| format!("{} {}", digits(r, 3), digits(r, 2)),
    },
    Country {
        code: "CH",
        suffix: "AG",
        cities: &[("Zürich", "ZH"), ("Genève", "GE")],
        phone_prefixes: &["+41 44", "+41 22"],
        phone_digits: 7,
        postal: |r| format!("{}", r.gen_range(1000..9999)),
    },
];

const PRODUCTS: &[&str] = &["Virtual Apps", "Virtual Desktops", "Gateway", "Endpoint Management", "Secure Browser"];

/// Draws until the validator accepts (a shape that can never validate is a
/// bug in the table above, caught by the tests).
fn valid(mut draw: impl FnMut() -> String, check: impl Fn(&str) -> bool, what: &str) -> String {
    for _ in 0..200 {
        let v = draw();
        if check(&v) {
            return v;
        }
    }
    panic!("could not draw a valid {what}");
}

fn slug(s: &str) -> String {
    let s: String = s.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    s.split('-').filter(|p| !p.is_empty()).take(3).collect::<Vec<_>>().join("-")
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Generated {
    pub companies: u64,
    pub contacts: u64,
    pub contracts: u64,
    pub licenses: u64,
}

impl Generated {
    pub fn rows(&self) -> u64 {
        self.companies + self.contacts + self.contracts + self.licenses
    }
}

/// Writes companies.csv, contacts.csv, contracts.csv and licenses.csv into `out`.
pub fn generate(out: &Path, companies: u64, seed: u64, progress: bool) -> anyhow::Result<Generated> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let open = |name: &str| {
        csv::Writer::from_path(out.join(name)).with_context(|| format!("creating {}", out.join(name).display()))
    };
    let (mut co, mut ct, mut cn, mut li) =
        (open("companies.csv")?, open("contacts.csv")?, open("contracts.csv")?, open("licenses.csv")?);
    for (w, (_, header)) in [&mut co, &mut ct, &mut cn, &mut li].into_iter().zip(super::import::FILES) {
        w.write_record(*header)?;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let bar = progress.then(|| indicatif::ProgressBar::new(companies));
    let mut n = Generated::default();
    for i in 1..=companies {
        let country = COUNTRIES.choose(&mut rng).expect("non-empty");
        let country_code = domain::Country::try_from(country.code).expect("the demo's countries are ISO codes");
        let base: String = faker::company::en::CompanyName().fake_with_rng(&mut rng);
        let name = format!("{base} {}", country.suffix);
        let org_id = format!("ORG-{i:07}");
        let (city, region) = *country.cities.choose(&mut rng).expect("non-empty");
        let street = format!(
            "{} {}",
            rng.gen_range(1..300),
            faker::address::en::StreetName().fake_with_rng::<String, _>(&mut rng)
        );
        let postal = valid(
            || (country.postal)(&mut rng),
            |p| crate::text::check_postal_code(p, country.code).is_ok(),
            "postal code",
        );
        let phone = |rng: &mut StdRng| {
            valid(
                || {
                    format!(
                        "{} {}",
                        country.phone_prefixes.choose(rng).expect("non-empty"),
                        digits(rng, country.phone_digits)
                    )
                },
                |p| Phone::parse(p, Some(&country_code)).is_ok(),
                "phone number",
            )
        };
        let company_phone = phone(&mut rng);
        co.write_record([org_id.as_str(), &name, &street, city, region, &postal, country.code, &company_phone])?;
        n.companies += 1;

        let domain = format!("{}-{i}.example", slug(&base));
        let mut admins = Vec::new();
        for k in 0..rng.gen_range(2..=5) {
            let first: String = faker::name::en::FirstName().fake_with_rng(&mut rng);
            let last: String = faker::name::en::LastName().fake_with_rng(&mut rng);
            // Unique across the directory: the company number, and the
            // contact's rank within its company (two Carl Rutherfords).
            let mut username =
                format!("{}{}{i}", slug(&first).chars().next().unwrap_or('x'), slug(&last).replace('-', ""));
            if k > 0 {
                username = format!("{username}.{k}");
            }
            let email = format!("{}.{}.{k}@{domain}", slug(&first), slug(&last)).replace("-.", ".");
            let admin = k == 0 || rng.gen_bool(0.15);
            if admin {
                admins.push(username.clone());
            }
            let contact_phone = if rng.gen_bool(0.6) { phone(&mut rng) } else { String::new() };
            ct.write_record([
                org_id.as_str(),
                &username,
                &first,
                &last,
                &email,
                &contact_phone,
                if admin { "admin" } else { "user" },
            ])?;
            n.contacts += 1;
        }
        for k in 0..rng.gen_range(0..=2) {
            let admin = admins.choose(&mut rng).expect("every company has an admin");
            cn.write_record([format!("CTR-{}-{i:07}{k}", rng.gen_range(2015..2027)).as_str(), &org_id, admin])?;
            n.contracts += 1;
        }
        for k in 0..rng.gen_range(1..=3) {
            let serial =
                format!("{}-{}-{:07}-{k}", letters(&mut rng, b"ABCDEFGHJKLMNPQRSTUVWXYZ", 4), digits(&mut rng, 4), i);
            if rng.gen_bool(0.1) {
                let code = format!("MC-{:04X}-{:04X}-{i:X}", rng.gen::<u16>(), rng.gen::<u16>());
                li.write_record([format!("XP-{serial}").as_str(), &org_id, super::LEGACY_PRODUCT, &code])?;
            } else {
                li.write_record([serial.as_str(), &org_id, PRODUCTS.choose(&mut rng).expect("non-empty"), ""])?;
            }
            n.licenses += 1;
        }
        if let Some(bar) = &bar {
            if i % 1000 == 0 {
                bar.set_position(i);
            }
        }
    }
    for w in [&mut co, &mut ct, &mut cn, &mut li] {
        w.flush()?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_country_draws_valid_postal_codes_and_phones() {
        let mut rng = StdRng::seed_from_u64(7);
        for c in COUNTRIES {
            for _ in 0..20 {
                valid(|| (c.postal)(&mut rng), |p| crate::text::check_postal_code(p, c.code).is_ok(), c.code);
                valid(
                    || format!("{} {}", c.phone_prefixes.choose(&mut rng).unwrap(), digits(&mut rng, c.phone_digits)),
                    |p| Phone::parse(p, domain::Country::try_from(c.code).ok().as_ref()).is_ok(),
                    c.code,
                );
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_directory() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        generate(a.path(), 20, 3, false).unwrap();
        generate(b.path(), 20, 3, false).unwrap();
        for f in ["companies.csv", "contacts.csv", "contracts.csv", "licenses.csv"] {
            assert_eq!(std::fs::read(a.path().join(f)).unwrap(), std::fs::read(b.path().join(f)).unwrap(), "{f}");
        }
    }
}
