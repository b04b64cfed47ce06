//! Sender authentication. A `From:` address proves nothing by itself; the
//! receiving server's `Authentication-Results` (RFC 8601) does, but only when
//! it carries our own authserv-id (anyone can add such a header with another
//! id, and our MX is expected to remove foreign ones carrying ours).

/// How the sender was verified, if at all: `"dmarc"` or `"dkim"`.
pub fn verified_by(results: &[String], trusted_id: Option<&str>, from: &str) -> Option<&'static str> {
    let trusted_id = trusted_id?;
    let from_domain = from.rsplit_once('@')?.1.to_ascii_lowercase();
    let mut dkim = false;
    for header in results {
        let mut parts = header.split(';');
        let id = parts.next().unwrap_or("").split_whitespace().next().unwrap_or("");
        if !id.eq_ignore_ascii_case(trusted_id) {
            continue;
        }
        for result in parts {
            let words: Vec<&str> = result.split_whitespace().collect();
            let Some((method, outcome)) = words.first().and_then(|w| w.split_once('=')) else {
                continue;
            };
            let prop = |name: &str| {
                words
                    .iter()
                    .find_map(|w| w.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
            };
            let passed = outcome.eq_ignore_ascii_case("pass");
            match method.to_ascii_lowercase().as_str() {
                "dmarc" if passed && prop("header.from").is_some_and(|d| d.eq_ignore_ascii_case(&from_domain)) => {
                    return Some("dmarc");
                }
                "dkim" if passed && prop("header.d").is_some_and(|d| d.eq_ignore_ascii_case(&from_domain)) => {
                    dkim = true;
                }
                _ => {}
            }
        }
    }
    dkim.then_some("dkim")
}

#[cfg(test)]
mod tests {
    use super::verified_by;

    #[test]
    fn only_our_authserv_id_counts() {
        let ours = vec!["mx.frontdesk.example; spf=pass smtp.mailfrom=acme.example; dkim=pass header.d=acme.example header.s=s1; dmarc=pass header.from=acme.example".to_string()];
        assert_eq!(verified_by(&ours, Some("mx.frontdesk.example"), "ann@acme.example"), Some("dmarc"));
        assert_eq!(verified_by(&ours, None, "ann@acme.example"), None);
        assert_eq!(verified_by(&ours, Some("mx.other.example"), "ann@acme.example"), None);
        // Results for another domain do not verify this sender.
        assert_eq!(verified_by(&ours, Some("mx.frontdesk.example"), "eve@evil.example"), None);
        let dkim_only = vec!["mx.frontdesk.example 1; dkim=pass header.d=Acme.example; dmarc=none".to_string()];
        assert_eq!(verified_by(&dkim_only, Some("mx.frontdesk.example"), "ann@acme.example"), Some("dkim"));
        let failed =
            vec!["mx.frontdesk.example; dkim=fail header.d=acme.example; dmarc=fail header.from=acme.example"
                .to_string()];
        assert_eq!(verified_by(&failed, Some("mx.frontdesk.example"), "ann@acme.example"), None);
    }
}
