//! The replay loop of one turn: run the script, do what stopped it, run again.

use std::{sync::Arc, time::Instant};

use rhai::EvalAltResult;
use serde_json::Value;

use super::{
    effects::{EffectCall, EffectContext, EffectError},
    flows::Flow,
    host::{self, RunState, Stop},
    journal::{Entry, Journal, Outbound, Prompt},
    Inner,
};

/// How a turn's run of the flow ended.
pub(crate) enum End {
    Waiting(Prompt),
    Finished,
    HandedOff(String),
    /// The flow threw, ran away, or diverged from its journal. The text is for
    /// the logs only.
    Failed(String),
}

pub(crate) struct Replayed {
    pub flow: Arc<Flow>,
    pub journal: Journal,
    pub outputs: Vec<Outbound>,
    /// Writes of the effects performed in this turn.
    pub writes: Vec<crate::store::Write>,
    pub end: End,
}

/// An effect failed for a passing reason (its store or service is
/// unavailable): nothing of the turn is kept, the customer is asked to try
/// again. (Everything the flow itself gets wrong ends the replay as
/// [`End::Failed`] instead.)
#[derive(Debug, thiserror::Error)]
#[error("effect {name} failed temporarily: {source:#}")]
pub(crate) struct ReplayError {
    pub name: String,
    pub source: anyhow::Error,
}

pub(crate) struct TurnInput {
    pub text: Option<String>,
    pub answering_step: Option<u32>,
}

/// Runs `flow` over `journal` until it waits, ends or fails, performing the
/// effects it asks for and following `start()` hand-overs.
pub(crate) async fn replay(
    inner: &Inner,
    mut flow: Arc<Flow>,
    mut journal: Journal,
    input: TurnInput,
    ctx: &EffectContext,
) -> Result<Replayed, ReplayError> {
    let deadline = Instant::now() + inner.settings.engine.turn_deadline;
    let mut state = RunState {
        entries: std::mem::take(&mut journal.entries),
        cursor: 0,
        input: input.text,
        answering_step: input.answering_step,
        outputs: Vec::new(),
        now_ms: ctx.now_ms,
        settings: inner.flow_settings.clone(),
        stop: None,
        mismatch: None,
    };
    let mut switches = 0;
    let mut writes = Vec::new();
    loop {
        state.cursor = 0;
        state.stop = None;
        let run = async { host::run_once(&inner.rhai, &flow.ast, &journal.params, state, deadline) };
        let (s, result) = super::timing::step("script", run).await;
        state = s;
        let end = if let Some(m) = state.mismatch.take() {
            Some(End::Failed(m))
        } else {
            match (state.stop.take(), result) {
                (None, Ok(())) => Some(End::Finished),
                (None, Err(e)) => Some(End::Failed(describe(&flow.name, &e))),
                (Some(Stop::Wait(p)), _) => Some(End::Waiting(p)),
                (Some(Stop::Handoff { reason }), _) => Some(End::HandedOff(reason)),
                (Some(Stop::Effect { name, args }), _) => {
                    let hold = format!("{}:{}:{switches}:{}", ctx.hold, flow.name, state.entries.len());
                    let call = EffectCall::new(args, EffectContext { flow: flow.name.clone(), hold, ..ctx.clone() });
                    let (result, effect_writes) =
                        super::timing::step(name.as_str(), inner.effects.perform(&name, call)).await;
                    let result = match result {
                        Ok(v) => Ok(v),
                        Err(EffectError::Failed(msg)) => Err(msg),
                        Err(EffectError::Retry(source)) => return Err(ReplayError { name, source }),
                    };
                    writes.extend(effect_writes);
                    crate::crashpoint::hit("after_effect");
                    state.entries.push(Entry::Effect { name, result });
                    None
                }
                (Some(Stop::Start { flow: next, params }), _) => {
                    switches += 1;
                    if switches > inner.settings.engine.max_flow_switches {
                        Some(End::Failed(format!(
                            "{}: more than {} start() hand-overs in one turn",
                            flow.name,
                            switches - 1
                        )))
                    } else {
                        match inner.flows.current(&next, ctx.now_ms).await {
                            Ok(f) => {
                                flow = f;
                                journal = Journal { params: with_context(params, ctx), entries: Vec::new() };
                                state.entries.clear();
                                None
                            }
                            Err(e) => Some(End::Failed(format!("{}: start({next:?}): {e}", flow.name))),
                        }
                    }
                }
            }
        };
        if let Some(end) = end {
            journal.entries = state.entries;
            return Ok(Replayed { flow, journal, outputs: state.outputs, writes, end });
        }
    }
}

/// Every flow's params carry who it runs for, under `params.channel` and
/// `params.sender`, next to what the starting flow passed.
pub(crate) fn with_context(params: Value, ctx: &EffectContext) -> Value {
    let mut map = match params {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        other => {
            let mut m = serde_json::Map::new();
            m.insert("value".into(), other);
            m
        }
    };
    map.entry("channel").or_insert_with(|| Value::String(ctx.channel.clone()));
    map.entry("sender").or_insert_with(|| Value::String(ctx.sender.clone()));
    Value::Object(map)
}

/// `flow_name:line: error` for the logs, digging through function-call
/// wrappers to the line that actually failed.
fn describe(flow: &str, e: &EvalAltResult) -> String {
    let mut inner = e;
    while let EvalAltResult::ErrorInFunctionCall(_, _, next, _) = inner {
        inner = next;
    }
    let line = inner.position().line().or(e.position().line()).map_or_else(|| "?".to_string(), |l| l.to_string());
    let message = match inner {
        EvalAltResult::ErrorTerminated(..) => "ran past the turn deadline".to_string(),
        EvalAltResult::ErrorTooManyOperations(..) => "ran past the operation limit".to_string(),
        other => other.to_string(),
    };
    format!("{flow}.rhai:{line}: {message}")
}
