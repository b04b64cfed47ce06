//! Why an effect did not do what its flow asked: the `reason` field of its
//! result. Flows branch on these names (`found.reason == "rate_limited"`);
//! `frontdesk flows check` reports a comparison with a name no effect gives.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// A rate limit or cap is used up; the result also has `wait_minutes`.
    RateLimited,
    /// No company record matches the search.
    NotFound,
    /// A machine code search hit the serial of a newer product's license;
    /// the result also has `product`.
    NotLegacy,
    /// The identity created as many accounts as it may.
    Limit,
    /// The address asking to be added is already a contact (their login
    /// information was mailed; the result has `mailed`).
    AlreadyContact,
    /// The company has no administrator to decide a request.
    NoAdmin,
    /// The verification code is too old (or was used up).
    Expired,
    /// The verification code is not the one mailed.
    Wrong,
}

impl Refusal {
    pub const ALL: [Refusal; 8] = [
        Refusal::RateLimited,
        Refusal::NotFound,
        Refusal::NotLegacy,
        Refusal::Limit,
        Refusal::AlreadyContact,
        Refusal::NoAdmin,
        Refusal::Expired,
        Refusal::Wrong,
    ];

    /// The name flows see.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::RateLimited => "rate_limited",
            Refusal::NotFound => "not_found",
            Refusal::NotLegacy => "not_legacy",
            Refusal::Limit => "limit",
            Refusal::AlreadyContact => "already_contact",
            Refusal::NoAdmin => "no_admin",
            Refusal::Expired => "expired",
            Refusal::Wrong => "wrong",
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_names_flows_see_are_the_serialized_ones() {
        for r in super::Refusal::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.name());
        }
    }
}
