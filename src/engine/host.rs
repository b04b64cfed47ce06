//! The rhai side of replay: the sandboxed script engine and the host
//! functions flows call.
//!
//! A turn runs the script synchronously on the current thread, so the state
//! of the run lives in a thread-local that the host functions reach. Each host
//! function first looks at the journal: if the call's result is recorded, it
//! returns it and moves on. Otherwise it either produces the result on the
//! spot (messages, the clock, settings: recorded in the journal as it goes) or
//! *suspends* the script: it records why in [`RunState::stop`] and raises
//! rhai's `Exit`, which passes through script functions and `try`/`catch`
//! untouched. The engine then does the slow part outside rhai (wait for the
//! customer, an async effect, another flow) and replays.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    sync::Arc,
    time::Instant,
};

use rhai::{Array, Dynamic, EvalAltResult, Map, Position, Scope, AST};
use serde_json::Value;

use super::journal::{Entry, Outbound, Prompt, PromptKind};
use crate::config::EngineSettings;

type HostResult<T> = Result<T, Box<EvalAltResult>>;

/// Why a run of the script stopped before its end.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stop {
    /// Waiting for the customer's answer to this prompt.
    Wait(Prompt),
    /// An async effect must be performed and recorded.
    Effect { name: String, args: Vec<Value> },
    /// Hand over to another flow.
    Start { flow: String, params: Value },
    /// Hand over to a person.
    Handoff { reason: String },
}

/// The state of one turn, kept across the replays of that turn.
pub(crate) struct RunState {
    pub entries: Vec<Entry>,
    pub cursor: usize,
    /// The customer's message, until a prompt accepts it.
    pub input: Option<String>,
    /// The journal step of the prompt the customer was answering.
    pub answering_step: Option<u32>,
    pub outputs: Vec<Outbound>,
    pub now_ms: i64,
    pub settings: Arc<Value>,
    pub stop: Option<Stop>,
    /// Set when the script asks for something the journal recorded
    /// differently: the replay is not deterministic and must not go on.
    pub mismatch: Option<String>,
}

thread_local! {
    static RUN: RefCell<Option<RunState>> = const { RefCell::new(None) };
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    static PATTERNS: RefCell<HashMap<String, Option<regex::Regex>>> = RefCell::new(HashMap::new());
}

/// Most options a `choose` may offer.
const MAX_OPTIONS: usize = 100;

/// Builds the sandboxed script engine with every host function registered.
/// `effects` are the names and arities of the async effects.
pub(crate) fn build_engine(limits: &EngineSettings, effects: &[(String, usize)]) -> rhai::Engine {
    let mut e = rhai::Engine::new();
    // No file access: scripts cannot import modules, and cannot eval code.
    e.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    e.disable_symbol("eval");
    e.set_max_modules(0);
    e.set_max_operations(limits.max_operations);
    e.set_max_call_levels(limits.max_call_depth);
    e.set_max_string_size(limits.max_string_size);
    e.set_max_array_size(limits.max_array_size);
    e.set_max_map_size(limits.max_map_size);
    e.set_max_expr_depths(64, 32);
    e.set_strict_variables(true);
    // No string interner: with `sync` it is one lock for every thread
    // running a turn, and rhai waits for it by sleeping the thread for 10 ms
    // at a time (see `the_script_engine_shares_no_string_interner_between_turns`).
    e.set_max_strings_interned(0);
    e.on_progress(|ops| {
        if ops % 1024 == 0 {
            if let Some(deadline) = DEADLINE.get() {
                if Instant::now() > deadline {
                    return Some("turn deadline exceeded".into());
                }
            }
        }
        None
    });
    e.on_print(|s| tracing::info!(target: "frontdesk::flow", "print: {s}"));
    e.on_debug(|s, src, pos| tracing::debug!(target: "frontdesk::flow", "debug {src:?} {pos}: {s}"));

    e.register_fn("say", |text: &str| output(text, false));
    e.register_fn("say_private", |text: &str| output(text, true));
    e.register_fn("ask", |p: &str| prompt(p, PromptKind::Text, false));
    e.register_fn("ask_private", |p: &str| prompt(p, PromptKind::Text, true));
    e.register_fn("ask_email", |p: &str| prompt(p, PromptKind::Email, true));
    e.register_fn("ask_phone", |p: &str| prompt(p, PromptKind::Phone { region: None }, true));
    e.register_fn("ask_phone", |p: &str, region: &str| {
        let region = crate::domain::Country::parse(region)
            .map_err(|_| runtime(format!("ask_phone: unknown country {region:?}")))?;
        prompt(p, PromptKind::Phone { region: Some(region) }, true)
    });
    e.register_fn("ask_country", |p: &str| prompt(p, PromptKind::Country, false));
    e.register_fn("ask_postal_code", |p: &str, country: &str| {
        let country = crate::domain::Country::parse(country)
            .map_err(|_| runtime(format!("ask_postal_code: unknown country {country:?}")))?;
        prompt(p, PromptKind::PostalCode { country }, true)
    });
    e.register_fn("choose", |p: &str, options: Array| choose(p, options, false));
    e.register_fn("choose_private", |p: &str, options: Array| choose(p, options, true));
    e.register_fn("confirm", |p: &str| prompt(p, PromptKind::Confirm, false));
    e.register_fn("now", || recorded(|r| Ok(Value::from(r.now_ms))));
    e.register_fn("setting", |key: &str| {
        let key = key.to_string();
        recorded(move |r| {
            key.split('.')
                .try_fold(r.settings.as_ref(), |node, part| node.get(part))
                .cloned()
                .ok_or_else(|| format!("setting({key:?}): no such setting"))
        })
    });
    e.register_fn("start", |flow: &str| {
        suspend(Stop::Start { flow: flow.to_string(), params: Value::Object(Default::default()) })
    });
    e.register_fn("start", |flow: &str, params: Map| {
        let params = rhai::serde::from_dynamic::<Value>(&Dynamic::from_map(params))?;
        suspend(Stop::Start { flow: flow.to_string(), params })
    });
    e.register_fn("handoff", |reason: &str| suspend(Stop::Handoff { reason: reason.to_string() }));

    // Pure helpers: they read only their arguments, so they need no journal.
    e.register_fn("matches_any", matches_any);
    e.register_fn("matches_pattern", matches_pattern);
    e.register_fn("country_name", |code: &str| {
        crate::domain::Country::parse(code).map(|c| Dynamic::from(c.name())).unwrap_or(Dynamic::UNIT)
    });

    for (name, arity) in effects {
        let name = name.clone();
        match arity {
            0 => {
                e.register_fn(name.clone(), move || effect(&name, vec![]));
            }
            1 => {
                e.register_fn(name.clone(), move |a: Dynamic| effect(&name, vec![a]));
            }
            2 => {
                e.register_fn(name.clone(), move |a: Dynamic, b: Dynamic| effect(&name, vec![a, b]));
            }
            3 => {
                e.register_fn(name.clone(), move |a: Dynamic, b: Dynamic, c: Dynamic| effect(&name, vec![a, b, c]));
            }
            n => panic!("effect {name} has {n} arguments; at most 3 are supported"),
        }
    }
    e
}

/// The scope every flow runs in: `params`, what the flow was started with.
pub(crate) fn scope_with(params: &Value) -> Scope<'static> {
    let mut scope = Scope::new();
    let params = rhai::serde::to_dynamic(params).unwrap_or(Dynamic::UNIT);
    scope.push_constant("params", if params.is_unit() { Dynamic::from_map(Map::new()) } else { params });
    scope
}

/// Runs the script once over `state`, which comes back with what happened.
pub(crate) fn run_once(
    engine: &rhai::Engine,
    ast: &AST,
    params: &Value,
    state: RunState,
    deadline: Instant,
) -> (RunState, Result<(), Box<EvalAltResult>>) {
    RUN.with(|r| *r.borrow_mut() = Some(state));
    DEADLINE.set(Some(deadline));
    let mut scope = scope_with(params);
    let result = engine.run_ast_with_scope(&mut scope, ast);
    DEADLINE.set(None);
    let state = RUN.with(|r| r.borrow_mut().take()).expect("run state is set for the whole run");
    (state, result)
}

fn with_run<T>(f: impl FnOnce(&mut RunState) -> HostResult<T>) -> HostResult<T> {
    RUN.with(|r| match r.borrow_mut().as_mut() {
        Some(state) => f(state),
        None => Err(runtime("host function called outside a turn")),
    })
}

fn runtime(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(msg.into()), Position::NONE))
}

/// Stops the script; the engine reads `stop` and acts on it.
fn suspend(stop: Stop) -> HostResult<Dynamic> {
    with_run(|r| {
        r.stop = Some(stop);
        Err(Box::new(EvalAltResult::Exit(Dynamic::UNIT, Position::NONE)))
    })
}

/// Stops the script because replay diverged from the journal.
fn diverged(r: &mut RunState, wanted: &str) -> Box<EvalAltResult> {
    let found = r.entries.get(r.cursor).map_or("the end of the journal", |e| e.kind());
    r.mismatch = Some(format!("journal step {}: the flow asked for {wanted} but the journal holds {found}", r.cursor));
    Box::new(EvalAltResult::Exit(Dynamic::UNIT, Position::NONE))
}

fn to_dynamic(v: &Value) -> HostResult<Dynamic> {
    rhai::serde::to_dynamic(v)
}

fn output(text: &str, private: bool) -> HostResult<()> {
    with_run(|r| {
        if r.cursor < r.entries.len() {
            return match r.entries[r.cursor] {
                Entry::Say => {
                    r.cursor += 1;
                    Ok(())
                }
                _ => Err(diverged(r, "say")),
            };
        }
        r.outputs.push(Outbound::Text { text: text.to_string(), private, by: None });
        r.entries.push(Entry::Say);
        r.cursor += 1;
        Ok(())
    })
}

/// A value the engine makes itself, recorded the first time.
fn recorded(make: impl FnOnce(&RunState) -> Result<Value, String>) -> HostResult<Dynamic> {
    with_run(|r| {
        if r.cursor < r.entries.len() {
            return match &r.entries[r.cursor] {
                Entry::Value(v) => {
                    r.cursor += 1;
                    to_dynamic(v)
                }
                _ => Err(diverged(r, "a recorded value")),
            };
        }
        let v = make(r).map_err(runtime)?;
        let d = to_dynamic(&v)?;
        r.entries.push(Entry::Value(v));
        r.cursor += 1;
        Ok(d)
    })
}

/// `choose(text, options)`: each option is a label, returned as it is
/// (for lists built at run time), or a `[key, label]` pair, whose key is
/// returned. Flows branch on keys, so rewording a label changes no branch;
/// `frontdesk flows check` reports a `switch` arm or comparison naming a
/// value no option of that `choose` returns.
fn choose(text: &str, options: Array, private: bool) -> HostResult<Dynamic> {
    if options.is_empty() || options.len() > MAX_OPTIONS {
        return Err(runtime(format!("choose: needs 1 to {MAX_OPTIONS} options, got {}", options.len())));
    }
    let mut keyed: Vec<(String, String)> = Vec::with_capacity(options.len());
    for option in options {
        if !option.is_array() {
            let label = option.to_string();
            keyed.push((label.clone(), label));
            continue;
        }
        match option.cast::<Array>().as_slice() {
            [key, label] => keyed.push((key.to_string(), label.to_string())),
            _ => return Err(runtime("choose: a keyed option is a [key, label] pair".to_string())),
        }
    }
    let labels = keyed.iter().map(|(_, label)| label.clone()).collect();
    let answer = prompt(text, PromptKind::Choice { options: labels }, private)?;
    let label = answer.to_string();
    Ok(keyed.into_iter().find(|(_, l)| *l == label).map_or(answer, |(key, _)| key.into()))
}

/// Asks the customer, or returns the recorded answer.
fn prompt(text: &str, kind: PromptKind, private: bool) -> HostResult<Dynamic> {
    with_run(|r| {
        if r.cursor < r.entries.len() {
            return match &r.entries[r.cursor] {
                Entry::Answer(v) => {
                    r.cursor += 1;
                    to_dynamic(v)
                }
                _ => Err(diverged(r, "an answer")),
            };
        }
        let step = r.cursor as u32;
        let prompt = Prompt { step, text: text.to_string(), kind, private };
        // The customer's message answers the question they were shown.
        if r.answering_step == Some(step) {
            if let Some(input) = r.input.take() {
                match prompt.kind.accept(&input) {
                    Ok(v) => {
                        let d = to_dynamic(&v)?;
                        r.entries.push(Entry::Answer(v));
                        r.cursor += 1;
                        return Ok(d);
                    }
                    Err(reason) => {
                        r.outputs.push(Outbound::Text { text: reason, private: false, by: None });
                    }
                }
            }
        }
        r.outputs.push(Outbound::prompt(&prompt));
        r.stop = Some(Stop::Wait(prompt));
        Err(Box::new(EvalAltResult::Exit(Dynamic::UNIT, Position::NONE)))
    })
}

/// An async effect: the recorded result, or a stop asking the engine for it.
fn effect(name: &str, args: Vec<Dynamic>) -> HostResult<Dynamic> {
    with_run(|r| {
        if r.cursor < r.entries.len() {
            return match &r.entries[r.cursor] {
                Entry::Effect { name: n, result } if n == name => {
                    r.cursor += 1;
                    match result {
                        Ok(v) => to_dynamic(v),
                        Err(msg) => Err(runtime(format!("{name}: {msg}"))),
                    }
                }
                _ => Err(diverged(r, &format!("effect {name}"))),
            };
        }
        let args = args.iter().map(rhai::serde::from_dynamic::<Value>).collect::<Result<Vec<_>, _>>()?;
        r.stop = Some(Stop::Effect { name: name.to_string(), args });
        Err(Box::new(EvalAltResult::Exit(Dynamic::UNIT, Position::NONE)))
    })
}

/// Whether `text` contains any of `words` (case-insensitive), allowing a
/// small typo in words of five letters or more.
fn matches_any(text: &str, words: Array) -> bool {
    let text = text.to_lowercase();
    let tokens: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).collect();
    words.iter().any(|w| {
        let w = w.to_string().to_lowercase();
        if w.is_empty() {
            return false;
        }
        if w.contains(' ') {
            return text.contains(&w);
        }
        tokens.iter().any(|t| *t == w || (w.len() >= 5 && t.len() >= 4 && within_one_edit(t, &w)))
    })
}

/// Whether two words are at most one edit apart (a substitution, an
/// insertion or deletion, or two neighbours swapped). Every customer word is
/// compared with every keyword, so ASCII words are compared in place; other
/// scripts go through the general distance.
fn within_one_edit(a: &str, b: &str) -> bool {
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    if !a.is_ascii() || !b.is_ascii() {
        return strsim::osa_distance(a, b) <= 1;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let Some(i) = short.iter().zip(long).position(|(x, y)| x != y) else {
        return true; // equal, or one letter added at the end
    };
    if short.len() == long.len() {
        short[i + 1..] == long[i + 1..]
            || (i + 1 < short.len()
                && short[i] == long[i + 1]
                && short[i + 1] == long[i]
                && short[i + 2..] == long[i + 2..])
    } else {
        short[i..] == long[i + 1..]
    }
}

/// Whether `text` matches a regular expression (compiled once per thread;
/// size-limited, so a pattern cannot exhaust memory).
fn matches_pattern(text: &str, pattern: &str) -> HostResult<bool> {
    PATTERNS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 256 {
            cache.clear();
        }
        let re = cache.entry(pattern.to_string()).or_insert_with(|| {
            regex::RegexBuilder::new(pattern).case_insensitive(true).size_limit(1 << 20).build().ok()
        });
        match re {
            Some(re) => Ok(re.is_match(text)),
            None => Err(runtime(format!("matches_pattern: invalid pattern {pattern:?}"))),
        }
    })
}

#[cfg(test)]
mod engine_tests {
    /// Turns run the one script engine on every runtime thread at once, so
    /// nothing in it may be a lock that two turns contend for. rhai's
    /// string interner is one (with `sync`): a run that finds it taken
    /// sleeps the whole thread for 10 ms (`locked_write`), a runtime worker
    /// that every other turn on it then waits for. At 5,000 recovery turns
    /// a second that happened 15-20 times a second (`perf trace -e
    /// clock_nanosleep`, 2026-12-03) and was most of the p99.
    #[test]
    fn the_script_engine_shares_no_string_interner_between_turns() {
        let settings = crate::config::Settings::load_from(None, &[]).expect("defaults load");
        let engine = super::build_engine(&settings.engine, &[]);
        assert_eq!(engine.max_strings_interned(), 0);
    }
}

#[cfg(test)]
mod edit_tests {
    use super::within_one_edit;

    #[test]
    fn one_edit_agrees_with_the_general_distance() {
        let words = [
            "password",
            "pasword",
            "passwrod",
            "passwords",
            "paszword",
            "apssword",
            "login",
            "logni",
            "lgoin",
            "logout",
            "süper",
            "super",
            "forgot",
            "forgto",
            "fogrot",
            "",
        ];
        for a in words {
            for b in words {
                assert_eq!(within_one_edit(a, b), strsim::osa_distance(a, b) <= 1, "{a:?} {b:?}");
            }
        }
    }
}
