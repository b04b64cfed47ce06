//! The flows: compiled scripts by name (the current source) and by source
//! hash (what a conversation is pinned to), from the set built into the
//! binary or from a configured folder ([`FlowsSource`]).
//!
//! A conversation pins the hash of the source it started on, and every source
//! ever used is kept in the store, so editing a file never changes a
//! conversation in flight, while new conversations get the edit without a
//! restart: the file's size and modification time are checked each time a
//! flow is started.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use sha2::{Digest, Sha256};

use crate::store::Store;

/// A compiled flow.
pub struct Flow {
    pub name: String,
    pub hash: String,
    pub ast: rhai::AST,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{0:?} is not a flow name (letters, digits and _ only)")]
    BadName(String),
    #[error("there is no flow named {0:?}")]
    Unknown(String),
    #[error("{file}:{line}:{col}: {message}")]
    Compile { file: String, line: usize, col: usize, message: String },
    #[error("the source of flow {name} version {hash} is missing from the store")]
    MissingSource { name: String, hash: String },
    #[error("reading flow {name}: {source}")]
    Io { name: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Where flows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowsSource {
    /// The set built into the binary (`crate::builtin::FLOWS`).
    BuiltIn,
    /// A folder of `<name>.rhai` files, read again when one changes.
    Folder(PathBuf),
}

impl FlowsSource {
    /// From `engine.flows_dir`: empty means the built-in set.
    pub fn of(setting: &str) -> FlowsSource {
        match setting.trim() {
            "" => FlowsSource::BuiltIn,
            dir => FlowsSource::Folder(PathBuf::from(dir)),
        }
    }

    /// The names of its flows, sorted.
    pub fn names(&self) -> std::io::Result<Vec<String>> {
        let mut names: Vec<String> = match self {
            FlowsSource::BuiltIn => crate::builtin::flows().into_iter().map(|(name, _)| name.to_string()).collect(),
            FlowsSource::Folder(dir) => std::fs::read_dir(dir)?
                .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".rhai").map(str::to_string))
                .collect(),
        };
        names.sort();
        Ok(names)
    }

    /// Checks that a configured folder can serve: it exists and holds the
    /// router flow. (The built-in set always can.)
    pub fn check_serves(&self, router: &str) -> Result<(), String> {
        let FlowsSource::Folder(dir) = self else { return Ok(()) };
        if !dir.is_dir() {
            return Err(format!(
                "engine.flows_dir: {} is not a folder (leave it empty for the built-in flows, or write them out \
                 with `frontdesk flows eject DIR`)",
                dir.display()
            ));
        }
        if !dir.join(format!("{router}.rhai")).is_file() {
            return Err(format!("engine.flows_dir: {} holds no router flow {router}.rhai", dir.display()));
        }
        Ok(())
    }
}

impl std::fmt::Display for FlowsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlowsSource::BuiltIn => f.write_str("the built-in flows"),
            FlowsSource::Folder(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// A flow's source as read, with its file's modification time and length
/// (what tells a changed file) and how compile errors name it.
type Read = (String, Option<SystemTime>, u64, String);

struct Current {
    modified: Option<SystemTime>,
    len: u64,
    flow: Arc<Flow>,
}

pub struct Flows {
    source: FlowsSource,
    engine: Arc<rhai::Engine>,
    store: Store,
    current: Mutex<HashMap<String, Current>>,
    by_hash: Mutex<HashMap<String, Arc<Flow>>>,
    /// One gate per source hash being compiled: concurrent first turns wait
    /// for the first to compile (and store) it instead of doing it again.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// How many times a source was compiled.
    compilations: std::sync::atomic::AtomicUsize,
}

/// Flow names are plain identifiers, so `start("../x")` cannot reach a file
/// outside the flows folder.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub fn source_hash(source: &str) -> String {
    hex::encode(&Sha256::digest(source.as_bytes())[..16])
}

/// Compiles a flow's source, reporting errors as `file:line:col: message`.
pub fn compile(engine: &rhai::Engine, file: &str, source: &str) -> Result<rhai::AST, FlowError> {
    // `params` is declared for strict-variable checking, but as a variable:
    // a constant would be folded into the script by the optimizer.
    let mut scope = rhai::Scope::new();
    scope.push("params", rhai::Map::new());
    engine.compile_with_scope(&scope, source).map_err(|e| {
        let pos = e.position();
        FlowError::Compile {
            file: file.to_string(),
            line: pos.line().unwrap_or(0),
            col: pos.position().unwrap_or(0),
            message: e.err_type().to_string(),
        }
    })
}

impl Flows {
    pub fn new(source: FlowsSource, engine: Arc<rhai::Engine>, store: Store) -> Flows {
        Flows {
            source,
            engine,
            store,
            current: Mutex::new(HashMap::new()),
            by_hash: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
            compilations: Default::default(),
        }
    }

    /// How many times a source was compiled so far (once per source, however
    /// many turns asked for it at once).
    pub fn compilations(&self) -> usize {
        self.compilations.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The flow of `hash`, made by `make` the first time only: concurrent
    /// callers wait for the first (single flight per source hash).
    async fn once(
        &self,
        hash: &str,
        make: impl std::future::Future<Output = Result<Arc<Flow>, FlowError>>,
    ) -> Result<Arc<Flow>, FlowError> {
        if let Some(f) = self.by_hash.lock().expect("flows lock").get(hash) {
            return Ok(f.clone());
        }
        let gate = self.loading.lock().expect("flows lock").entry(hash.to_string()).or_default().clone();
        let _first = gate.lock().await;
        if let Some(f) = self.by_hash.lock().expect("flows lock").get(hash) {
            return Ok(f.clone());
        }
        let made = make.await;
        if let Ok(flow) = &made {
            self.compilations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.by_hash.lock().expect("flows lock").insert(hash.to_string(), flow.clone());
        }
        // A source that does not compile leaves no gate behind either.
        self.loading.lock().expect("flows lock").remove(hash);
        made
    }

    /// Compiles every flow of the source now (at start-up), so the first
    /// customers wait for none; returns how many.
    pub async fn warm_up(&self, now_ms: i64) -> Result<usize, FlowError> {
        let names = self.source.names().map_err(|e| FlowError::Io { name: self.source.to_string(), source: e })?;
        for name in &names {
            self.current(name, now_ms).await?;
        }
        Ok(names.len())
    }

    pub fn source(&self) -> &FlowsSource {
        &self.source
    }

    /// A flow's source now, with what tells a changed file (`None` for an
    /// unknown flow).
    fn read(&self, name: &str) -> Result<Option<Read>, FlowError> {
        let dir = match &self.source {
            FlowsSource::BuiltIn => {
                return Ok(crate::builtin::flow(name)
                    .map(|s| (s.to_string(), None, s.len() as u64, format!("{name}.rhai (built in)"))))
            }
            FlowsSource::Folder(dir) => dir,
        };
        let path = dir.join(format!("{name}.rhai"));
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FlowError::Io { name: name.to_string(), source: e }),
        };
        let source = std::fs::read_to_string(&path).map_err(|e| FlowError::Io { name: name.to_string(), source: e })?;
        Ok(Some((source, meta.modified().ok(), meta.len(), path.display().to_string())))
    }

    /// Whether the cached flow is still what the source holds, without
    /// reading it (the built-in set never changes).
    fn unchanged(&self, name: &str, cached: &Current) -> bool {
        match &self.source {
            FlowsSource::BuiltIn => true,
            FlowsSource::Folder(dir) => std::fs::metadata(dir.join(format!("{name}.rhai")))
                .is_ok_and(|m| m.modified().ok() == cached.modified && m.len() == cached.len),
        }
    }

    /// The flow as its file reads now (for a new conversation).
    pub async fn current(&self, name: &str, now_ms: i64) -> Result<Arc<Flow>, FlowError> {
        if !valid_name(name) {
            return Err(FlowError::BadName(name.to_string()));
        }
        if let Some(c) = self.current.lock().expect("flows lock").get(name) {
            if self.unchanged(name, c) {
                return Ok(c.flow.clone());
            }
        }
        let Some((source, modified, len, label)) = self.read(name)? else {
            return Err(FlowError::Unknown(name.to_string()));
        };
        let hash = source_hash(&source);
        let flow = self
            .once(&hash, async {
                let ast = compile(&self.engine, &label, &source)?;
                // Keep the source before any conversation can pin it.
                self.store.save_flow_source(&hash, name, &source, now_ms).await?;
                tracing::info!(flow = name, hash = %hash, "loaded flow");
                Ok(Arc::new(Flow { name: name.to_string(), hash: hash.clone(), ast }))
            })
            .await?;
        self.current
            .lock()
            .expect("flows lock")
            .insert(name.to_string(), Current { modified, len, flow: flow.clone() });
        Ok(flow)
    }

    /// The exact version a conversation is pinned to.
    pub async fn pinned(&self, name: &str, hash: &str) -> Result<Arc<Flow>, FlowError> {
        self.once(hash, async {
            let (stored_name, source) = self
                .store
                .flow_source(hash)
                .await?
                .ok_or_else(|| FlowError::MissingSource { name: name.to_string(), hash: hash.to_string() })?;
            let ast = compile(&self.engine, &format!("{stored_name}.rhai@{hash}"), &source)?;
            Ok(Arc::new(Flow { name: stored_name, hash: hash.to_string(), ast }))
        })
        .await
    }
}
