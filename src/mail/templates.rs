//! Mail templates: `<name>.subject.txt`, `<name>.txt` and `<name>.html`,
//! built in or in the configured folder ([`Templates`]), rendered with
//! minijinja when the mail is sent.

use std::path::PathBuf;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
#[error("mail template {name}: {source}")]
pub struct TemplateError {
    pub name: String,
    #[source]
    pub source: minijinja::Error,
}

/// Where templates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Templates {
    /// The set built into the binary (`crate::builtin::MAIL_TEMPLATES`).
    BuiltIn,
    /// A folder, read at every mail (an edit applies to the next one).
    Folder(PathBuf),
}

impl Templates {
    /// From `mail.templates_dir`: empty means the built-in set.
    pub fn of(setting: &str) -> Templates {
        match setting.trim() {
            "" => Templates::BuiltIn,
            dir => Templates::Folder(PathBuf::from(dir)),
        }
    }

    /// Checks that a configured folder exists and holds the templates of
    /// the answers to support mail (the built-in set always does).
    pub fn check_serves(&self) -> Result<(), String> {
        let Templates::Folder(dir) = self else { return Ok(()) };
        if !dir.join("reply.subject.txt").is_file() {
            return Err(format!(
                "mail.templates_dir: {} holds no reply.subject.txt (leave it empty for the built-in templates, or \
                 write them out with `frontdesk flows eject DIR`)",
                dir.display()
            ));
        }
        Ok(())
    }
}

/// Renders template `name` with `context`. A fresh environment each time, so
/// an operator's edit applies to the next mail without a restart.
pub fn render(templates: &Templates, name: &str, context: &Value) -> Result<Rendered, TemplateError> {
    let mut env = minijinja::Environment::new();
    match templates {
        Templates::BuiltIn => env.set_loader(|file| Ok(crate::builtin::mail_template(file).map(str::to_string))),
        Templates::Folder(dir) => env.set_loader(minijinja::path_loader(dir)),
    }
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let err = |source| TemplateError { name: name.to_string(), source };
    let render = |file: String| env.get_template(&file).and_then(|t| t.render(context)).map_err(err);
    let subject = render(format!("{name}.subject.txt"))?;
    Ok(Rendered {
        // A subject is one line: nothing from a value can start a new header.
        subject: subject.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "),
        text: render(format!("{name}.txt"))?,
        html: render(format!("{name}.html"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dir() -> Templates {
        Templates::Folder(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates/mail"))
    }

    #[test]
    fn login_info_renders_and_escapes_html() {
        let ctx = json!({"first_name": "Ann <b>", "username": "alee", "company": "Acme & Co", "reset_url": "https://x.example/r?t=1", "expires_minutes": 30});
        let r = render(&dir(), "login_info", &ctx).unwrap();
        assert_eq!(r.subject, "Your My Account login information");
        assert!(r.text.contains("User name: alee") && r.text.contains("Hello Ann <b>,"));
        assert!(r.html.contains("Ann &lt;b&gt;") && r.html.contains("Acme &amp; Co"));
    }

    #[test]
    fn a_missing_value_is_an_error_not_a_blank() {
        assert!(render(&dir(), "login_info", &json!({"first_name": "Ann"})).is_err());
    }
}

#[cfg(test)]
mod every_template {
    use serde_json::json;

    /// Every built-in template renders with the values its callers pass.
    #[test]
    fn renders() {
        let dir = super::Templates::BuiltIn;
        let account = json!({"first_name": "Ann", "company": "Acme\r\nBcc: x@y", "org_id": "ORG-1", "username": "ann", "hours": 6,
            "region": {"name": "EMEA", "phone": "+44", "email": "cs@example.com", "hours": "9-5"}});
        let contact = json!({"admin_first_name": "Ann", "company": "Acme\r\nBcc: x@y", "first_name": "Carla", "last_name": "S\nX",
            "email": "c@acme.example", "number": "CR-1", "decide_url": "https://x.example/t", "username": "carla"});
        for name in ["contact_request", "contact_welcome", "contact_declined"] {
            let r = super::render(&dir, name, &contact).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!r.subject.contains('\r') && !r.subject.contains('\n'), "{name}: {:?}", r.subject);
        }
        for name in ["account_created", "account_pending", "account_approved", "account_refused"] {
            let r = super::render(&dir, name, &account).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!r.subject.contains('\r') && !r.subject.contains('\n'), "{name}: {:?}", r.subject);
        }
    }
}
