//! The account directory's tables: companies, contacts, sales contracts and
//! licenses, looked up by their normalised key columns ([`super::keys`]).
//! What a search means, and what an import accepts, is `crate::directory`'s.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, ConnectOptions as _, Connection as _, Executor as _};

use super::{
    exec::Conn,
    keys,
    read::{parsed, records, FieldError, Fields, Record},
    rows::optional_phone,
    sql::Sql,
    writes, Result, Store, StoreError, Write,
};
use crate::domain::{Country, EmailAddress, OrgId, Phone};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Company {
    pub org_id: OrgId,
    pub name: String,
    pub street: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country: Country,
    pub phone: Phone,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: i64,
    pub org_id: OrgId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: EmailAddress,
    pub phone: Option<Phone>,
    pub role: String,
    pub status: String,
}

impl Record for Company {
    fn read(row: &impl Fields) -> std::result::Result<Company, FieldError> {
        Ok(Company {
            org_id: parsed(row, "org_id")?,
            name: row.field("name")?,
            street: row.field("street")?,
            city: row.field("city")?,
            region: row.field("region")?,
            postal_code: row.field("postal_code")?,
            country: parsed(row, "country")?,
            phone: parsed(row, "phone")?,
            status: row.field("status")?,
        })
    }
}

impl Record for Contact {
    fn read(row: &impl Fields) -> std::result::Result<Contact, FieldError> {
        Ok(Contact {
            id: row.field("id")?,
            org_id: parsed(row, "org_id")?,
            username: row.field("username")?,
            first_name: row.field("first_name")?,
            last_name: row.field("last_name")?,
            email: parsed(row, "email")?,
            phone: optional_phone(row, "phone")?,
            role: row.field("role")?,
            status: row.field("status")?,
        })
    }
}

records!(Company, Contact);

/// A contact and its company's name (`company_name`).
struct ContactOf(Contact, String);

impl Record for ContactOf {
    fn read(row: &impl Fields) -> std::result::Result<ContactOf, FieldError> {
        Ok(ContactOf(Contact::read(row)?, row.field("company_name")?))
    }
}

records!(ContactOf);

/// A contact to add to a company.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub org_id: OrgId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: EmailAddress,
    pub phone: Option<Phone>,
    pub role: String,
}

/// The key a search looks a company up by (already normalised).
#[derive(Debug, Clone, Copy)]
pub enum CompanyKey<'a> {
    Username(&'a str),
    Email(&'a str),
    /// A contract, and its administrator's last name: both must match.
    Contract(&'a str, &'a str),
    Serial(&'a str),
    /// A machine code of a license of `product`.
    MachineCode(&'a str, &'a str),
}

const COMPANY_COLUMNS: &str =
    "c.org_id, c.name, c.street, c.city, c.region, c.postal_code, c.country, c.phone, c.status";
pub(super) const CONTACT_COLUMNS: &str = "id, org_id, username, first_name, last_name, email, phone, role, status";

/// Companies a search may find: every one but those refused by screening.
const FINDABLE: &str = "c.status <> 'refused'";

pub(super) async fn insert_company(tx: &mut impl Conn, c: &Company, now: i64) -> Result<()> {
    const SQL: &str = "INSERT INTO companies (org_id, name, name_key, street, city, region, postal_code, country, \
        phone, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    let sql = Sql::fixed(SQL)
        .arg(c.org_id.as_str())
        .arg(&c.name)
        .arg(keys::name(&c.name))
        .arg(&c.street)
        .arg(&c.city)
        .arg(&c.region)
        .arg(&c.postal_code)
        .arg(c.country.as_str())
        .arg(c.phone.as_str())
        .arg(&c.status)
        .arg(now)
        .arg(now);
    tx.run(sql).await?;
    Ok(())
}

pub(super) async fn insert_contact(tx: &mut impl Conn, c: &NewContact, now: i64) -> Result<()> {
    tx.run(
        Sql::fixed(
            "INSERT INTO contacts (org_id, username, username_key, first_name, last_name, last_name_key, email, \
         email_key, phone, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .arg(c.org_id.as_str())
        .arg(&c.username)
        .arg(keys::lower(&c.username))
        .arg(&c.first_name)
        .arg(&c.last_name)
        .arg(keys::name(&c.last_name))
        .arg(c.email.as_str())
        .arg(c.email.key())
        .arg(c.phone.as_deref().unwrap_or_default())
        .arg(&c.role)
        .arg(now)
        .arg(now),
    )
    .await?;
    Ok(())
}

impl Store {
    /// The findable company a key names: not one whose screening refused
    /// it, and (where the key goes through a contact: user name, address, a
    /// contract's administrator) not through a disabled contact.
    pub async fn company_by(&self, key: CompanyKey<'_>) -> Result<Option<Company>> {
        let (sql, a, b) = match key {
            CompanyKey::Username(k) => (
                "FROM contacts k JOIN companies c ON c.org_id = k.org_id WHERE k.username_key = $1 \
                 AND k.status = 'active'",
                k,
                None,
            ),
            CompanyKey::Email(k) => (
                "FROM contacts k JOIN companies c ON c.org_id = k.org_id WHERE k.email_key = $1 AND k.status = 'active'",
                k,
                None,
            ),
            CompanyKey::Contract(number, last_name) => (
                "FROM contracts t JOIN companies c ON c.org_id = t.org_id \
                 JOIN contacts k ON k.username_key = t.admin_username_key AND k.org_id = t.org_id \
                 WHERE t.contract_key = $1 AND k.last_name_key = $2 AND k.status = 'active'",
                number,
                Some(last_name),
            ),
            CompanyKey::Serial(k) => {
                ("FROM licenses l JOIN companies c ON c.org_id = l.org_id WHERE l.serial_key = $1", k, None)
            }
            CompanyKey::MachineCode(k, product) => (
                "FROM licenses l JOIN companies c ON c.org_id = l.org_id WHERE l.machine_code_key = $1 \
                 AND l.product = $2",
                k,
                Some(product),
            ),
        };
        let sql = format!("SELECT {COMPANY_COLUMNS} {sql} AND {FINDABLE}");
        let mut q = Sql::fixed(&sql).arg(a);
        if let Some(b) = b {
            q = q.arg(b);
        }
        self.read_first(q).await
    }

    /// The product of the license with this serial key, if any.
    pub async fn license_product(&self, serial_key: &str) -> Result<Option<String>> {
        const SQL: &str = "SELECT product FROM licenses WHERE serial_key = $1";
        let row: Option<(String,)> = self.read_first(Sql::fixed(SQL).arg(serial_key)).await?;
        Ok(row.map(|(p,)| p))
    }

    /// Whether a company exists (a bare primary-key lookup: the floor the
    /// directory bench compares searches with).
    pub async fn company_exists(&self, org_id: &str) -> Result<bool> {
        const SQL: &str = "SELECT org_id FROM companies WHERE org_id = $1";
        let row: Option<(String,)> = sqlx::query_as(SQL).bind(org_id).fetch_optional(&self.pool).await?;
        Ok(row.is_some())
    }

    /// Whether a contact has this user name (any case).
    pub async fn username_taken(&self, username: &str) -> Result<bool> {
        const SQL: &str = "SELECT COUNT(*) FROM contacts WHERE username_key = $1";
        let (n,): (i64,) = sqlx::query_as(SQL).bind(keys::lower(username)).fetch_one(&self.pool).await?;
        Ok(n > 0)
    }

    /// Sets a company's status (`active`, `pending_review`, `refused`).
    pub async fn set_company_status(&self, org_id: &str, status: &str, now: i64) -> Result<bool> {
        const SQL: &str = "UPDATE companies SET status = $1, updated_at = $2 WHERE org_id = $3";
        let done = sqlx::query(SQL).bind(status).bind(now).bind(org_id).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends the review of a company still in review with `status`, applies
    /// `writes` with it, and marks the follow-up `job` (if any) done, in one
    /// transaction. `false` (and no writes) if it was no longer in review.
    pub async fn end_review(
        &self,
        org_id: &str,
        status: &str,
        job: Option<i64>,
        writes: &[Write],
        now: i64,
    ) -> Result<bool> {
        const SQL: &str =
            "UPDATE companies SET status = $1, updated_at = $2 WHERE org_id = $3 AND status = 'pending_review'";
        let guard = sqlx::query(SQL).bind(status).bind(now).bind(org_id);
        let (mut tx, changed) = writes::guarded(&self.pool, guard, writes, now).await?;
        if let Some(job) = job {
            tx.run(Sql::fixed("UPDATE jobs SET status = 'done' WHERE id = $1").arg(job)).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Sets a contact's status (`active`, `disabled`), by user name.
    pub async fn set_contact_status(&self, username: &str, status: &str, now: i64) -> Result<bool> {
        const SQL: &str = "UPDATE contacts SET status = $1, updated_at = $2 WHERE username_key = $3";
        let done = sqlx::query(SQL).bind(status).bind(now).bind(keys::lower(username)).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn company_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM companies").fetch_one(&self.pool).await?;
        Ok(n)
    }

    pub async fn company(&self, org_id: &str) -> Result<Option<Company>> {
        let sql = format!("SELECT {COMPANY_COLUMNS} FROM companies c WHERE c.org_id = $1");
        self.read_first(Sql::fixed(&sql).arg(org_id)).await
    }

    /// The active contacts of a company, administrators first, then by name.
    pub async fn contacts(&self, org_id: &str) -> Result<Vec<Contact>> {
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE org_id = $1 AND status = 'active' \
             ORDER BY role, last_name_key, first_name, id"
        );
        self.read(Sql::fixed(&sql).arg(org_id)).await
    }

    /// A contact and the name of its company, in one read.
    pub async fn contact_and_company(&self, id: i64) -> Result<Option<(Contact, String)>> {
        let columns = CONTACT_COLUMNS.split(", ").map(|c| format!("k.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns}, c.name AS company_name FROM contacts k JOIN companies c ON c.org_id = k.org_id \
             WHERE k.id = $1"
        );
        let found: Option<ContactOf> = self.read_first(Sql::fixed(&sql).arg(id)).await?;
        Ok(found.map(|ContactOf(contact, company)| (contact, company)))
    }

    pub async fn contact(&self, id: i64) -> Result<Option<Contact>> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1");
        self.read_first(Sql::fixed(&sql).arg(id)).await
    }

    /// An active contact by e-mail address (case-insensitive).
    pub async fn contact_by_email(&self, email: &str) -> Result<Option<Contact>> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE email_key = $1 AND status = 'active'");
        self.read_first(Sql::fixed(&sql).arg(keys::lower(email))).await
    }

    /// Companies with this name (any case and spacing) in this country.
    pub async fn companies_named(&self, name: &str, country: &str) -> Result<Vec<Company>> {
        let sql = format!("SELECT {COMPANY_COLUMNS} FROM companies c WHERE c.name_key = $1 AND c.country = $2");
        Ok(sqlx::query_as(&sql).bind(keys::name(name)).bind(country.to_ascii_uppercase()).fetch_all(&self.pool).await?)
    }

    /// Empties the directory (the bench measures its insert floor on the
    /// store it then imports into).
    #[cfg(feature = "bench")]
    pub async fn clear_directory(&self) -> Result<()> {
        for table in ["licenses", "contracts", "contacts", "companies"] {
            sqlx::query(&format!("DELETE FROM {table}")).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// One file's import into `table`, in a transaction of its own: a
    /// file's rows are kept together or not at all. It runs on a connection
    /// of its own (tuned for a long write on SQLite, see
    /// [`super::Backend::import_pragmas`]), closed when the import ends, so
    /// nothing of that tuning stays in the pool. It takes the write lock at
    /// once on SQLite (it reads before it writes, as the writer's batches
    /// do). An empty table on a backend that allows it is bulk-loaded.
    pub async fn begin_import(&self, table: Table) -> Result<Import> {
        let mut conn = self.connect_options.connect().await?;
        if let Some(pragmas) = self.backend.import_pragmas() {
            conn.execute(pragmas).await?;
        }
        conn.execute(self.backend.begin_batch()).await?;
        let mut import = Import { conn, table, bulk: false };
        if self.backend.bulk_loads_empty_tables() {
            let sql = format!("SELECT 1 FROM {} LIMIT 1", table.name());
            import.bulk = sqlx::query(&sql).fetch_optional(&mut import.conn).await?.is_none();
        }
        if import.bulk {
            for (_, name, _) in LATE_INDEXES.iter().filter(|(t, _, _)| *t == table) {
                sqlx::query(&format!("DROP INDEX IF EXISTS {name}")).execute(&mut import.conn).await?;
            }
        }
        Ok(import)
    }
}

/// A row of the directory's CSV files, checked and ready to upsert.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectoryRow {
    Company {
        org_id: OrgId,
        name: String,
        street: String,
        city: String,
        region: String,
        postal_code: String,
        country: Country,
        phone: Phone,
    },
    Contact {
        org_id: OrgId,
        username: String,
        first: String,
        last: String,
        email: EmailAddress,
        phone: Option<Phone>,
        role: String,
    },
    Contract {
        number: String,
        org_id: OrgId,
        admin: String,
    },
    License {
        serial: String,
        org_id: OrgId,
        product: String,
        machine_code: Option<String>,
    },
}

/// The directory's tables, as an import fills them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Companies,
    Contacts,
    Contracts,
    Licenses,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Companies => "companies",
            Table::Contacts => "contacts",
            Table::Contracts => "contracts",
            Table::Licenses => "licenses",
        }
    }
}

/// The indexes an import into an empty table builds after the table's rows
/// rather than row by row: one sort each, instead of a random B-tree insert
/// per row (3.5 million contacts: 42,000 rows/s kept up row by row, a bulk
/// load with the indexes built after 143,000). Their definitions are the
/// migrations' (a test compares them); the primary keys stay, so companies,
/// contracts and licenses are still upserted by key.
pub const LATE_INDEXES: &[(Table, &str, &str)] = &[
    (Table::Companies, "companies_by_name", "CREATE INDEX companies_by_name ON companies (name_key, country)"),
    (Table::Contacts, "contacts_by_username", "CREATE UNIQUE INDEX contacts_by_username ON contacts (username_key)"),
    (Table::Contacts, "contacts_by_email", "CREATE UNIQUE INDEX contacts_by_email ON contacts (email_key)"),
    (Table::Contacts, "contacts_by_company", "CREATE INDEX contacts_by_company ON contacts (org_id)"),
    (Table::Contracts, "contracts_by_company", "CREATE INDEX contracts_by_company ON contracts (org_id)"),
    (Table::Licenses, "licenses_by_company", "CREATE INDEX licenses_by_company ON licenses (org_id)"),
    (
        Table::Licenses,
        "licenses_by_machine_code",
        "CREATE INDEX licenses_by_machine_code ON licenses (machine_code_key) WHERE machine_code_key IS NOT NULL",
    ),
];

/// An import of one file in progress: the reference checks it needs, and its
/// upserts, in one transaction.
///
/// Dropped without [`Import::commit`], it closes its connection, and the
/// database rolls the transaction back.
pub struct Import {
    conn: AnyConnection,
    table: Table,
    /// The table was empty: its [`LATE_INDEXES`] were dropped, rows are
    /// inserted (the import itself makes sure no key repeats), and the
    /// indexes are built again before the commit.
    bulk: bool,
}

impl Import {
    /// Whether this import loads an empty table with its indexes built after.
    pub fn is_bulk(&self) -> bool {
        self.bulk
    }

    /// Every company on record, with its country.
    /// Streamed: a million companies are never a million rows in memory.
    pub async fn each_company_country(&mut self, mut each: impl FnMut(&str, &Country)) -> Result<()> {
        use futures::TryStreamExt as _;
        let mut rows =
            sqlx::query_as::<_, (String, String)>("SELECT org_id, country FROM companies").fetch(&mut self.conn);
        while let Some((org_id, country)) = rows.try_next().await? {
            let country = Country::try_from(country).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            each(&org_id, &country);
        }
        Ok(())
    }

    /// Whether any contact is on record.
    pub async fn has_contacts(&mut self) -> Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM contacts LIMIT 1").fetch_optional(&mut self.conn).await?;
        Ok(row.is_some())
    }

    /// Who holds each of these e-mail keys: `email_key → username_key`.
    pub async fn email_owners(&mut self, email_keys: &[String]) -> Result<HashMap<String, String>> {
        if email_keys.is_empty() {
            return Ok(HashMap::new());
        }
        let mut q = Sql::new(&self.conn, "SELECT email_key, username_key FROM contacts WHERE email_key IN (");
        q.list(email_keys.iter().map(String::as_str)).push(")").once();
        Ok(q.fetch_all::<(String, String), _>(&mut self.conn).await?.into_iter().collect())
    }

    /// The administrators of these companies, as `(org_id, username_key)`.
    pub async fn admins(&mut self, org_ids: &[&str]) -> Result<HashSet<(String, String)>> {
        if org_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut q =
            Sql::new(&self.conn, "SELECT org_id, username_key FROM contacts WHERE role = 'admin' AND org_id IN (");
        q.list(org_ids.iter().copied()).push(")").once();
        Ok(q.fetch_all::<(String, String), _>(&mut self.conn).await?.into_iter().collect())
    }

    /// Inserts or updates rows (all of one kind) by their keys; returns how
    /// many were written.
    pub async fn upsert(&mut self, rows: &[DirectoryRow], now: i64) -> Result<u64> {
        let Some(first) = rows.first() else { return Ok(0) };
        let (head, tail) = upsert_sql(first);
        // With its unique indexes dropped, a bulk-loaded contacts table has
        // no conflict to name; the import saw to it that keys do not repeat.
        let tail = if self.bulk && self.table == Table::Contacts { "" } else { tail };
        let mut q = Sql::new(&self.conn, head);
        q.rows(rows, |v, row| match row {
            DirectoryRow::Company { org_id, name, street, city, region, postal_code, country, phone } => {
                v.bind(org_id.as_str()).bind(name.as_str()).bind(keys::name(name)).bind(street.as_str());
                v.bind(city.as_str()).bind(region.as_str()).bind(postal_code.as_str()).bind(country.as_str());
                v.bind(phone.as_str()).bind(now).bind(now);
            }
            DirectoryRow::Contact { org_id, username, first, last, email, phone, role } => {
                v.bind(org_id.as_str()).bind(username.as_str()).bind(keys::lower(username)).bind(first.as_str());
                v.bind(last.as_str()).bind(keys::name(last)).bind(email.as_str()).bind(email.key());
                v.bind(phone.as_deref().unwrap_or_default()).bind(role.as_str()).bind(now).bind(now);
            }
            DirectoryRow::Contract { number, org_id, admin } => {
                v.bind(keys::code(number)).bind(number.as_str()).bind(org_id.as_str()).bind(keys::lower(admin));
                v.bind(now);
            }
            DirectoryRow::License { serial, org_id, product, machine_code } => {
                v.bind(keys::code(serial)).bind(serial.as_str()).bind(org_id.as_str()).bind(product.as_str());
                v.bind(machine_code.as_deref()).bind(machine_code.as_deref().map(keys::code)).bind(now);
            }
        });
        q.push(tail).once();
        let done = q.execute(&mut self.conn).await?;
        Ok(done.rows_affected().min(rows.len() as u64))
    }

    /// Keeps the file's rows, building the late indexes first after a bulk
    /// load (a key that repeats fails the index, and so the import).
    pub async fn commit(mut self) -> Result<()> {
        if self.bulk {
            for (_, _, create) in LATE_INDEXES.iter().filter(|(t, _, _)| *t == self.table) {
                sqlx::query(create).execute(&mut self.conn).await?;
            }
        }
        self.conn.execute("COMMIT").await?;
        Ok(self.conn.close().await?)
    }

    pub async fn rollback(mut self) -> Result<()> {
        self.conn.execute("ROLLBACK").await?;
        Ok(self.conn.close().await?)
    }
}

/// The head and conflict clause of a kind's upsert.
fn upsert_sql(kind: &DirectoryRow) -> (&'static str, &'static str) {
    match kind {
        DirectoryRow::Company { .. } => (
            "INSERT INTO companies (org_id, name, name_key, street, city, region, postal_code, country, phone, \
             created_at, updated_at) VALUES ",
            " ON CONFLICT (org_id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key, \
             street = excluded.street, city = excluded.city, region = excluded.region, \
             postal_code = excluded.postal_code, country = excluded.country, phone = excluded.phone, \
             updated_at = excluded.updated_at",
        ),
        DirectoryRow::Contact { .. } => (
            "INSERT INTO contacts (org_id, username, username_key, first_name, last_name, last_name_key, email, \
             email_key, phone, role, created_at, updated_at) VALUES ",
            " ON CONFLICT (username_key) DO UPDATE SET org_id = excluded.org_id, username = excluded.username, \
             first_name = excluded.first_name, last_name = excluded.last_name, \
             last_name_key = excluded.last_name_key, email = excluded.email, email_key = excluded.email_key, \
             phone = excluded.phone, role = excluded.role, updated_at = excluded.updated_at",
        ),
        DirectoryRow::Contract { .. } => (
            "INSERT INTO contracts (contract_key, contract_number, org_id, admin_username_key, updated_at) VALUES ",
            " ON CONFLICT (contract_key) DO UPDATE SET contract_number = excluded.contract_number, \
             org_id = excluded.org_id, admin_username_key = excluded.admin_username_key, \
             updated_at = excluded.updated_at",
        ),
        DirectoryRow::License { .. } => (
            "INSERT INTO licenses (serial_key, serial_number, org_id, product, machine_code, machine_code_key, \
             updated_at) VALUES ",
            " ON CONFLICT (serial_key) DO UPDATE SET serial_number = excluded.serial_number, \
             org_id = excluded.org_id, product = excluded.product, machine_code = excluded.machine_code, \
             machine_code_key = excluded.machine_code_key, updated_at = excluded.updated_at",
        ),
    }
}
