//! The `[http]` section: `serve`'s HTTP face.

use super::*;

impl Validator<'_> {
    pub(in crate::config) fn http(&mut self) -> HttpSettings {
        let listen_text = self.string("http.listen");
        let listen = match listen_text.trim().parse::<std::net::SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                self.bad("http.listen", format!("{listen_text:?} is not an address like \"127.0.0.1:8080\""));
                std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };
        let public = self.string("http.public_url").trim().trim_end_matches('/').to_string();
        let public_url_configured = !public.is_empty();
        if public_url_configured {
            match url::Url::parse(&public) {
                Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.query().is_none() => {}
                _ => self.bad("http.public_url", format!("{public:?} is not an http(s) URL without a query")),
            }
        }
        let api_key = self.secret("http.api_key");
        if api_key.as_ref().is_some_and(|k| k.expose().len() < 16) {
            self.bad("http.api_key", "must be at least 16 characters");
        }
        HttpSettings {
            listen,
            public_url: if public_url_configured { public } else { format!("http://{listen}") },
            public_url_configured,
            api_key,
            body_limit: self.int("http.body_limit", 1024, 16 << 20) as usize,
            request_timeout: self.duration("http.request_timeout"),
            api_rate: self.limit("http.api_rate"),
        }
    }
}
