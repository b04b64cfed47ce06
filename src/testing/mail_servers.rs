//! A private Dovecot + Postfix pair. Facts this relies on (checked on Debian
//! 12, see the project notes on private mail servers): both run as root from
//! a private config dir; Postfix re-reads a main.cf younger than ~2 s, so its
//! mtime is set into the past; the spool subdirectories must exist with the
//! postfix owner; Dovecot must be stopped by signalling its whole process
//! group, or IDLE sessions survive it; socket paths need a short base dir.

use std::{
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{bail, Context as _};

use super::ports::{free_port, wait_for_port};

/// The domain of the support mailbox (user `support`).
pub const SUPPORT_DOMAIN: &str = "support.example";
/// The customers' domain: every user but `support` is `<user>@customers.example`.
pub const CUSTOMER_DOMAIN: &str = "customers.example";
/// Every mailbox's password.
pub const PASSWORD: &str = "secret";

const NOBODY: u32 = 65534;
const POSTFIX_MASTER: &str = "/usr/lib/postfix/sbin/master";

/// Whether this machine can run the servers (root, packages installed).
pub fn available() -> Result<(), String> {
    if unsafe { libc::geteuid() } != 0 {
        return Err("the private mail servers need root".into());
    }
    for bin in
        ["/usr/sbin/dovecot", POSTFIX_MASTER, "/usr/lib/dovecot/lmtp", "/usr/lib/dovecot/imap", "/usr/bin/openssl"]
    {
        if !Path::new(bin).exists() {
            return Err(format!("{bin} is missing: apt-get install dovecot-imapd dovecot-lmtpd postfix openssl"));
        }
    }
    Ok(())
}

pub struct MailServers {
    root: tempfile::TempDir,
    users: Vec<String>,
    pub imap_port: u16,
    /// IMAP over implicit TLS, with a certificate for 127.0.0.1 signed by
    /// the test CA in [`MailServers::ca_file`].
    pub imaps_port: u16,
    pub smtp_port: u16,
    lmtp_port: u16,
    dovecot: Option<Child>,
    postfix: Option<Child>,
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn chown(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| format!("chown {}", path.display()))
}

fn mkdir(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        chown(path, uid, gid)?;
    }
    Ok(())
}

fn ids_of(user: &str, group: &str) -> anyhow::Result<(u32, u32)> {
    let cuser = std::ffi::CString::new(user)?;
    let cgroup = std::ffi::CString::new(group)?;
    // SAFETY: getpwnam/getgrnam return pointers to static storage, read at once.
    unsafe {
        let pw = libc::getpwnam(cuser.as_ptr());
        let gr = libc::getgrnam(cgroup.as_ptr());
        if pw.is_null() || gr.is_null() {
            bail!("user {user} or group {group} is missing (is postfix installed?)");
        }
        Ok(((*pw).pw_uid, (*gr).gr_gid))
    }
}

/// SIGTERM to a child's process group, then SIGKILL if it lingers.
fn stop_group(child: &mut Child) {
    let pgid = child.id() as i32;
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            // Children of the group may outlive the leader for a moment.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

impl MailServers {
    /// Starts both servers with mailboxes `support` and each of `customers`.
    ///
    /// A pair that does not start is tried again from scratch, with new
    /// ports, up to three times in all: once, on a machine where Postfix had
    /// just been installed, its master did not listen within 15 s in one of
    /// eight tests starting at once (2026-12-07; every later run started),
    /// and a port can still be taken by something else between choosing and
    /// binding it. The last try's error carries every try's.
    pub fn start(customers: &[&str]) -> anyhow::Result<MailServers> {
        available().map_err(anyhow::Error::msg)?;
        let mut failures = Vec::new();
        loop {
            match Self::try_start(customers) {
                Ok(servers) => return Ok(servers),
                Err(e) if failures.len() < 2 => {
                    eprintln!("the mail servers did not start ({e:#}); trying again with new ports");
                    failures.push(format!("{e:#}"));
                }
                Err(e) => return Err(e.context(format!("earlier tries: {}", failures.join("\n---\n")))),
            }
        }
    }

    fn try_start(customers: &[&str]) -> anyhow::Result<MailServers> {
        let root = tempfile::Builder::new().prefix("fdm").tempdir_in("/tmp")?;
        let mut users = vec!["support".to_string()];
        users.extend(customers.iter().map(|c| c.to_string()));
        let mut servers = MailServers {
            root,
            users,
            imap_port: free_port()?,
            imaps_port: free_port()?,
            smtp_port: free_port()?,
            lmtp_port: free_port()?,
            dovecot: None,
            postfix: None,
        };
        servers.configure()?;
        servers.start_dovecot().with_context(|| servers.logs())?;
        servers.start_postfix().with_context(|| servers.logs())?;
        Ok(servers)
    }

    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// This pair's own word (its directory's name), in both servers'
    /// greetings so that a test can tell them from another test's.
    fn tag(&self) -> String {
        self.dir().file_name().and_then(|n| n.to_str()).unwrap_or("fdm").to_string()
    }

    /// The Maildir of a mailbox (for seeding a mailbox without SMTP).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir().join("mail").join(user).join("Maildir")
    }

    /// The test CA's certificate (PEM), to trust for [`MailServers::imaps_port`].
    pub fn ca_file(&self) -> PathBuf {
        self.dir().join("dc/ca.pem")
    }

    /// A CA and a server certificate for 127.0.0.1 signed by it (a
    /// self-signed server certificate is refused by rustls as a CA used as
    /// an end entity).
    fn make_certificates(&self) -> anyhow::Result<()> {
        let dc = self.dir().join("dc");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        std::fs::write(
            dc.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        let steps: Vec<Vec<&str>> = vec![
            [
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=frontdesk test CA"],
            ]
            .concat(),
            [&["req"][..], &ec, &["-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        ];
        for args in steps {
            let out = Command::new("openssl")
                .args(&args)
                .current_dir(&dc)
                .stdin(Stdio::null())
                .output()
                .context("running openssl")?;
            anyhow::ensure!(
                out.status.success(),
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    pub fn address(user: &str) -> String {
        if user == "support" {
            format!("support@{SUPPORT_DOMAIN}")
        } else {
            format!("{user}@{CUSTOMER_DOMAIN}")
        }
    }

    fn configure(&self) -> anyhow::Result<()> {
        let d = self.dir();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        for sub in ["dc", "dc/run", "dc/state", "pf", "pf/etc"] {
            mkdir(&d.join(sub), 0o755, None)?;
        }
        mkdir(&d.join("mail"), 0o755, Some((NOBODY, NOBODY)))?;
        self.make_certificates()?;
        let users: String = self
            .users
            .iter()
            .map(|u| format!("{u}:{{PLAIN}}{PASSWORD}:{NOBODY}:{NOBODY}::{}/mail/{u}::\n", d.display()))
            .collect();
        write(&d.join("dc/users"), &users)?;
        std::fs::set_permissions(d.join("dc/users"), std::fs::Permissions::from_mode(0o644))?;
        let tag = self.tag();
        write(
            &d.join("dc/dovecot.conf"),
            &format!(
                r#"protocols = imap lmtp
listen = 127.0.0.1
base_dir = {d}/dc/run
state_dir = {d}/dc/state
instance_name = dc-{tag}
login_greeting = Dovecot {tag} ready.
log_path = {d}/dc/dovecot.log
ssl = yes
ssl_cert = <{d}/dc/cert.pem
ssl_key = <{d}/dc/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = {NOBODY}
last_valid_uid = {NOBODY}
mail_location = maildir:{d}/mail/%u/Maildir
protocol imap {{
  mail_max_userip_connections = 50
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/dc/users
}}
userdb {{
  driver = passwd-file
  args = {d}/dc/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
"#,
                d = d.display(),
                imap = self.imap_port,
                imaps = self.imaps_port,
                lmtp = self.lmtp_port,
            ),
        )?;
        let mailboxes: Vec<String> = self.users.iter().map(|u| format!("{}={u}", Self::address(u))).collect();
        let main_cf = d.join("pf/etc/main.cf");
        write(
            &main_cf,
            &format!(
                r#"compatibility_level = 3.6
queue_directory = {d}/pf/spool
data_directory = {d}/pf/data
maillog_file = {d}/pf/maillog
maillog_file_prefixes = {d}
myhostname = mail.test
smtpd_banner = $myhostname ESMTP {tag}
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains =
local_transport = error:no local delivery
alias_maps =
virtual_mailbox_domains = {SUPPORT_DOMAIN} {CUSTOMER_DOMAIN}
virtual_mailbox_maps = inline:{{ {maps} }}
virtual_transport = lmtp:inet:127.0.0.1:{lmtp}
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:outbound mail disabled in tests
in_flow_delay = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
lmtp_destination_concurrency_limit = 4
"#,
                d = d.display(),
                maps = mailboxes.join(", "),
                lmtp = self.lmtp_port,
            ),
        )?;
        // Postfix ignores a main.cf younger than about 2 s for a while.
        std::fs::File::options()
            .write(true)
            .open(&main_cf)?
            .set_modified(SystemTime::now() - Duration::from_secs(60))?;
        let services = [
            format!("127.0.0.1:{} inet n - n - - smtpd", self.smtp_port),
            "pickup    unix  n       -       n       60      1       pickup".into(),
            "cleanup   unix  n       -       n       -       0       cleanup".into(),
            "qmgr      unix  n       -       n       300     1       qmgr".into(),
            "rewrite   unix  -       -       n       -       -       trivial-rewrite".into(),
            "bounce    unix  -       -       n       -       0       bounce".into(),
            "defer     unix  -       -       n       -       0       bounce".into(),
            "trace     unix  -       -       n       -       0       bounce".into(),
            "verify    unix  -       -       n       -       1       verify".into(),
            "flush     unix  n       -       n       1000?   0       flush".into(),
            "proxymap  unix  -       -       n       -       -       proxymap".into(),
            "showq     unix  n       -       n       -       -       showq".into(),
            "error     unix  -       -       n       -       -       error".into(),
            "retry     unix  -       -       n       -       -       error".into(),
            "discard   unix  -       -       n       -       -       discard".into(),
            "smtp      unix  -       -       n       -       -       smtp".into(),
            "lmtp      unix  -       -       n       -       -       lmtp".into(),
            "anvil     unix  -       -       n       -       1       anvil".into(),
            "scache    unix  -       -       n       -       1       scache".into(),
            "postlog   unix-dgram n  -       n       -       1       postlogd".into(),
        ];
        write(&d.join("pf/etc/master.cf"), &(services.join("\n") + "\n"))?;
        // The spool, as `postfix start` would make it (but without its
        // dozens of postconf calls).
        let (pf_uid, pf_gid) = ids_of("postfix", "postfix")?;
        let (_, postdrop) = ids_of("postfix", "postdrop")?;
        let spool = d.join("pf/spool");
        mkdir(&spool, 0o755, Some((0, 0)))?;
        for sub in [
            "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private", "saved",
            "trace",
        ] {
            mkdir(&spool.join(sub), 0o700, Some((pf_uid, pf_gid)))?;
        }
        mkdir(&spool.join("maildrop"), 0o730, Some((pf_uid, postdrop)))?;
        mkdir(&spool.join("public"), 0o710, Some((pf_uid, postdrop)))?;
        mkdir(&spool.join("pid"), 0o755, Some((0, 0)))?;
        mkdir(&d.join("pf/data"), 0o700, Some((pf_uid, pf_gid)))?;
        Ok(())
    }

    pub fn start_dovecot(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::options().create(true).append(true).open(self.dir().join("dc/stdout.log"))?;
        let child = Command::new("/usr/sbin/dovecot")
            .args(["-F", "-c"])
            .arg(self.dir().join("dc/dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting dovecot")?;
        self.dovecot = Some(child);
        let tag = self.tag();
        wait_for_port(self.imap_port, "Dovecot IMAP", Some(&tag), self.dovecot.as_mut())?;
        // IMAPS greets only after the TLS handshake.
        wait_for_port(self.imaps_port, "Dovecot IMAPS", None, self.dovecot.as_mut())?;
        wait_for_port(self.lmtp_port, "Dovecot LMTP", Some(&tag), self.dovecot.as_mut())
    }

    /// Stops Dovecot the way an operator's restart does: every process of
    /// it, open IMAP sessions included.
    pub fn stop_dovecot(&mut self) {
        if let Some(mut child) = self.dovecot.take() {
            stop_group(&mut child);
        }
    }

    pub fn start_postfix(&mut self) -> anyhow::Result<()> {
        let etc = self.dir().join("pf/etc");
        // A master that just exited may still hold its lock for a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new(POSTFIX_MASTER).arg("-c").arg(&etc).arg("-t").status()?.code() != Some(0) {
            if Instant::now() > deadline {
                bail!("an earlier Postfix master still holds {}", etc.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::File::options().create(true).append(true).open(self.dir().join("pf/stdout.log"))?;
        let child = Command::new(POSTFIX_MASTER)
            .arg("-c")
            .arg(&etc)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the Postfix master")?;
        self.postfix = Some(child);
        wait_for_port(self.smtp_port, "Postfix SMTP", Some(&self.tag()), self.postfix.as_mut())
    }

    pub fn stop_postfix(&mut self) {
        if let Some(mut child) = self.postfix.take() {
            // The master calls setsid(): its pid is its process group.
            stop_group(&mut child);
        }
    }

    /// Asks Postfix to deliver what it has deferred now.
    pub fn flush_queue(&self) -> anyhow::Result<()> {
        let status = Command::new("/usr/sbin/postqueue")
            .arg("-c")
            .arg(self.dir().join("pf/etc"))
            .arg("-f")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "postqueue -f failed");
        Ok(())
    }

    /// The servers' logs, for a failing test's message.
    pub fn logs(&self) -> String {
        let read = |p: &str| std::fs::read_to_string(self.dir().join(p)).unwrap_or_default();
        let tail =
            |s: String| s.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        format!(
            "--- dovecot.log\n{}\n--- dovecot's output\n{}\n--- postfix maillog\n{}\n--- postfix's output\n{}",
            tail(read("dc/dovecot.log")),
            tail(read("dc/stdout.log")),
            tail(read("pf/maillog")),
            tail(read("pf/stdout.log"))
        )
    }

    /// Writes `raw` straight into a mailbox's Maildir (as LMTP would), for
    /// seeding large mailboxes quickly.
    pub fn deliver_to_maildir(&self, user: &str, name: &str, raw: &[u8]) -> anyhow::Result<()> {
        let maildir = self.maildir(user);
        for sub in ["", "new", "cur", "tmp"] {
            mkdir(&maildir.join(sub), 0o700, Some((NOBODY, NOBODY)))?;
        }
        let path = maildir.join("new").join(name);
        std::fs::write(&path, raw)?;
        chown(&path, NOBODY, NOBODY)
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        self.stop_postfix();
        self.stop_dovecot();
    }
}
