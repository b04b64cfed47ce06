//! The flows folder: compiled scripts by name (the current file) and by
//! source hash (what a conversation is pinned to).
//!
//! A conversation pins the hash of the source it started on, and every source
//! ever used is kept in the store, so editing a file never changes a
//! conversation in flight, while new conversations get the edit without a
//! restart: the file's size and modification time are checked each time a
//! flow is started.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
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

struct Current {
    modified: Option<SystemTime>,
    len: u64,
    flow: Arc<Flow>,
}

pub struct Flows {
    dir: PathBuf,
    engine: Arc<rhai::Engine>,
    store: Store,
    current: Mutex<HashMap<String, Current>>,
    by_hash: Mutex<HashMap<String, Arc<Flow>>>,
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
    pub fn new(dir: impl Into<PathBuf>, engine: Arc<rhai::Engine>, store: Store) -> Flows {
        Flows {
            dir: dir.into(),
            engine,
            store,
            current: Mutex::new(HashMap::new()),
            by_hash: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The flow as its file reads now (for a new conversation).
    pub async fn current(&self, name: &str, now_ms: i64) -> Result<Arc<Flow>, FlowError> {
        if !valid_name(name) {
            return Err(FlowError::BadName(name.to_string()));
        }
        let path = self.dir.join(format!("{name}.rhai"));
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FlowError::Unknown(name.to_string())),
            Err(e) => return Err(FlowError::Io { name: name.to_string(), source: e }),
        };
        let modified = meta.modified().ok();
        if let Some(c) = self.current.lock().expect("flows lock").get(name) {
            if c.modified == modified && c.len == meta.len() {
                return Ok(c.flow.clone());
            }
        }
        let source = std::fs::read_to_string(&path).map_err(|e| FlowError::Io { name: name.to_string(), source: e })?;
        let hash = source_hash(&source);
        let known = self.by_hash.lock().expect("flows lock").get(&hash).cloned();
        let flow = match known {
            Some(f) => f,
            None => {
                let ast = compile(&self.engine, &path.display().to_string(), &source)?;
                // Keep the source before any conversation can pin it.
                self.store.save_flow_source(&hash, name, &source, now_ms).await?;
                let flow = Arc::new(Flow { name: name.to_string(), hash: hash.clone(), ast });
                self.by_hash.lock().expect("flows lock").insert(hash, flow.clone());
                tracing::info!(flow = name, hash = %flow.hash, "loaded flow");
                flow
            }
        };
        self.current
            .lock()
            .expect("flows lock")
            .insert(name.to_string(), Current { modified, len: meta.len(), flow: flow.clone() });
        Ok(flow)
    }

    /// The exact version a conversation is pinned to.
    pub async fn pinned(&self, name: &str, hash: &str) -> Result<Arc<Flow>, FlowError> {
        if let Some(f) = self.by_hash.lock().expect("flows lock").get(hash) {
            return Ok(f.clone());
        }
        let (stored_name, source) = self
            .store
            .flow_source(hash)
            .await?
            .ok_or_else(|| FlowError::MissingSource { name: name.to_string(), hash: hash.to_string() })?;
        let ast = compile(&self.engine, &format!("{stored_name}.rhai@{hash}"), &source)?;
        let flow = Arc::new(Flow { name: stored_name, hash: hash.to_string(), ast });
        self.by_hash.lock().expect("flows lock").insert(hash.to_string(), flow.clone());
        Ok(flow)
    }
}
