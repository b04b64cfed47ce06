//! Async effects: host calls that need the outside world (a directory lookup,
//! a record to create, a mail to queue). The script never runs them itself:
//! it stops, the engine performs the effect once, records the result in the
//! journal, and replays.
//!
//! Adding one is a few lines:
//!
//! ```
//! use frontdesk::engine::{EffectError, Effects};
//!
//! let mut effects = Effects::new();
//! effects.register("shout", 1, |call| async move {
//!     let text = call.arg_str(0)?;
//!     if text.is_empty() {
//!         return Err(EffectError::Failed("nothing to shout".into()));
//!     }
//!     Ok(serde_json::json!(text.to_uppercase()))
//! });
//! // Flows can now call `shout("hello")`.
//! ```

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};

use serde_json::Value;

/// Who and what an effect runs for.
#[derive(Debug, Clone)]
pub struct EffectContext {
    pub conversation_id: i64,
    pub channel: String,
    pub sender: String,
    pub verified: Option<String>,
    pub flow: String,
    pub now_ms: i64,
}

pub struct EffectCall {
    pub args: Vec<Value>,
    pub context: EffectContext,
}

impl EffectCall {
    pub fn arg_str(&self, i: usize) -> Result<String, EffectError> {
        match self.args.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(EffectError::Failed(format!("argument {} must be text, got {other}", i + 1))),
            None => Err(EffectError::Failed(format!("argument {} is missing", i + 1))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    /// A permanent answer, recorded in the journal; the flow sees a runtime
    /// error it may catch.
    #[error("{0}")]
    Failed(String),
    /// A passing fault (database down): nothing is recorded, the turn fails
    /// with "try again" and the same message can be retried.
    #[error("temporary failure: {0:#}")]
    Retry(anyhow::Error),
}

impl EffectError {
    pub fn retry(e: impl Into<anyhow::Error>) -> EffectError {
        EffectError::Retry(e.into())
    }
}

pub type EffectFuture = Pin<Box<dyn Future<Output = Result<Value, EffectError>> + Send>>;
type EffectFn = Arc<dyn Fn(EffectCall) -> EffectFuture + Send + Sync>;

#[derive(Default, Clone)]
pub struct Effects {
    map: HashMap<String, (usize, EffectFn)>,
}

impl Effects {
    pub fn new() -> Effects {
        Effects::default()
    }

    /// Registers an effect callable from flows as `name(arg, ...)`, with
    /// `arity` (0 to 3) arguments.
    pub fn register<F, Fut>(&mut self, name: &str, arity: usize, f: F) -> &mut Self
    where
        F: Fn(EffectCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, EffectError>> + Send + 'static,
    {
        assert!(arity <= 3, "effects take at most 3 arguments");
        self.map.insert(name.to_string(), (arity, Arc::new(move |call| Box::pin(f(call)))));
        self
    }

    pub(crate) fn signatures(&self) -> Vec<(String, usize)> {
        self.map.iter().map(|(n, (a, _))| (n.clone(), *a)).collect()
    }

    pub(crate) async fn perform(&self, name: &str, call: EffectCall) -> Result<Value, EffectError> {
        match self.map.get(name) {
            Some((_, f)) => f(call).await,
            None => Err(EffectError::Failed(format!("no effect named {name}"))),
        }
    }
}
