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
    /// The agent who started this conversation's flow, if one did.
    pub by_agent: Option<String>,
    /// Names this effect in this state of the conversation (its id, the
    /// version the turn writes, the flow and the journal step): the same
    /// when a failed turn is run again on the same state, new once any turn
    /// of the conversation has committed. Quotas are taken under it, so a
    /// retried turn is not counted twice.
    pub hold: String,
}

pub struct EffectCall {
    pub args: Vec<Value>,
    pub context: EffectContext,
    writes: Vec<crate::store::Write>,
}

impl EffectCall {
    pub(crate) fn new(args: Vec<Value>, context: EffectContext) -> EffectCall {
        EffectCall { args, context, writes: Vec::new() }
    }

    /// Adds a write to the turn: it commits with the turn's journal entry
    /// for this effect, or not at all.
    pub fn write(&mut self, w: crate::store::Write) {
        self.writes.push(w);
    }

    /// An audit entry for this conversation's identity.
    pub fn audit(&mut self, action: &str, subject: &str, detail: Value) {
        let w = crate::store::Write::Audit(crate::store::Audit {
            channel: self.context.channel.clone(),
            actor: self.context.sender.clone(),
            by_agent: self.context.by_agent.clone(),
            action: action.to_string(),
            subject: subject.to_string(),
            detail,
        });
        self.writes.push(w);
    }

    pub fn arg_i64(&self, i: usize) -> Result<i64, EffectError> {
        match self.args.get(i) {
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().expect("checked")),
            Some(Value::String(s)) => {
                s.trim().parse().map_err(|_| EffectError::Failed(format!("argument {} must be a number", i + 1)))
            }
            Some(other) => Err(EffectError::Failed(format!("argument {} must be a number, got {other}", i + 1))),
            None => Err(EffectError::Failed(format!("argument {} is missing", i + 1))),
        }
    }

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

/// What an effect produced: its value for the journal, and its writes.
pub type EffectOutput = (Result<Value, EffectError>, Vec<crate::store::Write>);
type EffectFn = Arc<dyn Fn(EffectCall) -> Pin<Box<dyn Future<Output = EffectOutput> + Send>> + Send + Sync>;

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
        self.register_with_writes(name, arity, move |call| {
            let fut = f(call);
            async move { (fut.await, Vec::new()) }
        })
    }

    /// Registers an effect that also writes (mails, records, audit entries):
    /// it gets the call by value and returns its value with the writes it
    /// made through [`EffectCall::write`].
    pub fn register_with_writes<F, Fut>(&mut self, name: &str, arity: usize, f: F) -> &mut Self
    where
        F: Fn(EffectCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = EffectOutput> + Send + 'static,
    {
        assert!(arity <= 3, "effects take at most 3 arguments");
        self.map.insert(name.to_string(), (arity, Arc::new(move |call| Box::pin(f(call)))));
        self
    }

    /// Declares an effect by name and arity only, for checking flows where
    /// no store is open (`frontdesk flows check`); calling it fails.
    pub fn declare(&mut self, name: &str, arity: usize) -> &mut Self {
        let name_owned = name.to_string();
        self.register(name, arity, move |_| {
            let name = name_owned.clone();
            async move { Err(EffectError::Failed(format!("{name} is only declared here, not available"))) }
        })
    }

    pub(crate) fn signatures(&self) -> Vec<(String, usize)> {
        self.map.iter().map(|(n, (a, _))| (n.clone(), *a)).collect()
    }

    pub(crate) async fn perform(&self, name: &str, call: EffectCall) -> EffectOutput {
        match self.map.get(name) {
            Some((_, f)) => f(call).await,
            None => (Err(EffectError::Failed(format!("no effect named {name}"))), Vec::new()),
        }
    }
}

impl EffectCall {
    /// Finishes an effect made with [`Effects::register_with_writes`].
    pub fn done(self, result: Result<Value, EffectError>) -> EffectOutput {
        let writes = if result.is_ok() { self.writes } else { Vec::new() };
        (result, writes)
    }
}
