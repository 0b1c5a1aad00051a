//! Bounds on the minijinja templates a catalog controls: values templates, the executor Job
//! template and the site templates. A pull request may bring any template, and `validate`
//! runs on it in CI, so rendering one must end soon and in bounded memory whatever it says:
//!
//! - **instructions**: minijinja's fuel (every VM instruction costs one); the budget shrinks
//!   for templates with long literal text, so a loop cannot copy a long literal out many times;
//! - **output**: everything a render prints (`{{ … }}`, captures and `{% set %}` blocks
//!   included) is charged to a per-render output budget before it is written;
//! - **filters**: the built-in filters that walk sequences or build strings (`join`, `sum`,
//!   `replace`, `indent`, `tojson`, …) check their inputs first: a lazily repeated sequence
//!   (`[0] * 10**12`) or an input larger than the output budget is refused, and the bytes they
//!   read and write are charged to a per-render work budget.
//!
//! What fuel does not see (an operator on huge strings: minijinja caps `*` at 100 MB per
//! operation, and `~` can double a string) is bounded only by the instruction budget.
//! An exceeded budget is a [`minijinja::Error`] that [`exceeded`] recognises, reported as
//! `template-budget`.

use std::sync::atomic::{AtomicUsize, Ordering};

use minijinja::value::{Object, Rest};
use minijinja::{Environment, Error, ErrorKind, Output, State, Value};

/// What a family of templates may spend per render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// VM instructions (minijinja fuel), before scaling down for long literal text.
    pub fuel: u64,
    /// Bytes a render may print, captures included.
    pub output: usize,
    /// Bytes the guarded filters may read and write in one render.
    pub work: usize,
    /// Literal text a render may copy out at most: the instruction budget is cut so that
    /// fuel × the template's longest literal stays under this.
    pub literal: u64,
}

/// Values templates (inline strings and `*.j2` values files). A real one spends tens to a few
/// thousand instructions (the tests' and examples' spend under 100); the values of a release
/// cannot exceed etcd's 1.5 MiB request limit anyway (see `compile::size`).
pub const VALUES: Limits = Limits {
    fuel: 1_000_000,
    output: 4 << 20,
    work: 64 << 20,
    literal: 64 << 20,
};

/// The executor Job template (the built-in one spends about 110 instructions per Job).
pub const EXECUTOR: Limits = VALUES;

/// The site templates, per page; see [`site_limits`].
pub const SITE: Limits = Limits {
    fuel: 2_000_000,
    output: 64 << 20,
    work: 256 << 20,
    literal: 1 << 30,
};

/// The site's budget grows with the catalog: every app, version and release is a row.
pub fn site_limits(rows: usize) -> Limits {
    let rows = rows as u64;
    Limits {
        fuel: SITE.fuel.saturating_add(rows.saturating_mul(2_000)),
        output: SITE
            .output
            .saturating_add((rows as usize).saturating_mul(16 << 10)),
        work: SITE
            .work
            .saturating_add((rows as usize).saturating_mul(64 << 10)),
        literal: SITE.literal.saturating_add(rows.saturating_mul(1 << 20)),
    }
}

/// The least fuel any template gets: enough to print a template without tags.
const MIN_FUEL: u64 = 100;

/// The most items a guarded filter takes in one sequence or mapping (minijinja's own `range`
/// stops at 100,000).
pub const MAX_ITEMS: usize = 1_000_000;

/// Which budget a render exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The instruction budget (fuel).
    Instructions,
    /// The output budget.
    Output,
    /// A guarded filter's input or the work budget.
    Work,
}

impl Budget {
    pub fn describe(self) -> &'static str {
        match self {
            Budget::Instructions => "the template ran out of its instruction budget",
            Budget::Output => "the template prints more than its output budget",
            Budget::Work => "the template builds values larger than its budget",
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl std::error::Error for Budget {}

/// Which budget `e` reports exceeded, if any.
pub fn exceeded(e: &Error) -> Option<Budget> {
    if e.kind() == ErrorKind::OutOfFuel {
        return Some(Budget::Instructions);
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(b) = s.downcast_ref::<Budget>() {
            return Some(*b);
        }
        if let Some(inner) = s.downcast_ref::<Error>()
            && inner.kind() == ErrorKind::OutOfFuel
        {
            return Some(Budget::Instructions);
        }
        source = s.source();
    }
    None
}

/// The hint of a `template-budget` diagnostic.
pub const HINT: &str = "the template does too much work: loops too large, or strings and lists built too big; values templates fill in a few names, they do not generate data";

fn budget_error(budget: Budget, detail: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, detail).with_source(budget)
}

/// An environment with the budgets of `limits` for templates with these `sources`: fuel,
/// the default formatter charged to the output budget, the guarded filters.
pub fn environment(limits: Limits, sources: &[&str]) -> Environment<'static> {
    let mut env = Environment::new();
    set_formatter(&mut env, limits, minijinja::escape_formatter);
    guard(&mut env, limits, sources);
    env
}

/// The instruction budget and the guarded filters of `limits`, for templates with these
/// `sources` (the formatter is [`set_formatter`]'s).
pub fn guard(env: &mut Environment<'_>, limits: Limits, sources: &[&str]) {
    env.set_fuel(Some(fuel_for(limits, sources)));
    guard_filters(env, limits);
}

/// Renders `source` with `env` (from [`environment`]), and checks the whole output.
pub fn render_str<S: serde::Serialize>(
    env: &Environment<'_>,
    source: &str,
    ctx: S,
    limits: Limits,
) -> Result<String, Error> {
    let rendered = env.render_str(source, ctx)?;
    check_output(&rendered, limits)?;
    Ok(rendered)
}

/// The whole output of a render against the output budget (literal text is not charged as
/// it is printed; its total is bounded by fuel and checked here).
pub fn check_output(rendered: &str, limits: Limits) -> Result<(), Error> {
    if rendered.len() > limits.output {
        return Err(budget_error(
            Budget::Output,
            format!(
                "the template prints {} bytes, over its budget of {}",
                rendered.len(),
                limits.output
            ),
        ));
    }
    Ok(())
}

/// The instruction budget for templates with these sources: `limits.fuel`, cut so that a
/// loop printing the longest literal text cannot print more than `limits.literal`.
pub fn fuel_for(limits: Limits, sources: &[&str]) -> u64 {
    let longest = sources
        .iter()
        .map(|s| longest_literal(s))
        .max()
        .unwrap_or(0)
        .max(1) as u64;
    limits.fuel.min(limits.literal / longest).max(MIN_FUEL)
}

/// The longest stretch of `source` between template tags (an over-estimate is safe).
fn longest_literal(source: &str) -> usize {
    let bytes = source.as_bytes();
    let (mut longest, mut start) = (0, 0);
    for i in 1..bytes.len() {
        let pair = (bytes[i - 1], bytes[i]);
        if matches!(
            pair,
            (b'{', b'{' | b'%' | b'#') | (b'}' | b'%' | b'#', b'}')
        ) {
            longest = longest.max((i - 1).saturating_sub(start));
            start = i + 1;
        }
    }
    longest.max(bytes.len().saturating_sub(start))
}

/// Installs `inner` as the formatter, behind the output budget.
pub fn set_formatter<F>(env: &mut Environment<'_>, limits: Limits, inner: F)
where
    F: Fn(&mut Output, &State, &Value) -> Result<(), Error> + Send + Sync + 'static,
{
    env.set_formatter(move |out, state, value| {
        let counters = counters(state);
        let room = limits
            .output
            .saturating_sub(counters.output.load(Ordering::Relaxed));
        let len = match value.as_str() {
            Some(s) => s.len(),
            None => display_len(value, room.saturating_add(1)),
        };
        if len > room {
            return Err(budget_error(
                Budget::Output,
                format!(
                    "the template prints over its budget of {} bytes",
                    limits.output
                ),
            ));
        }
        counters.output.fetch_add(len, Ordering::Relaxed);
        inner(out, state, value)
    });
}

/// What one render has spent, kept in the render's state.
#[derive(Debug, Default)]
struct Counters {
    output: AtomicUsize,
    work: AtomicUsize,
}

impl Object for Counters {}

fn counters(state: &State) -> std::sync::Arc<Counters> {
    state.get_or_set_temp_object("pitrix.template.budget", Counters::default)
}

/// The length of `value` as printed, counted up to `cap` (a lazy sequence is not walked
/// further than that).
fn display_len(value: &Value, cap: usize) -> usize {
    struct Count {
        n: usize,
        cap: usize,
    }
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.n = self.n.saturating_add(s.len());
            if self.n > self.cap {
                Err(std::fmt::Error)
            } else {
                Ok(())
            }
        }
    }
    if value.len().is_some_and(|n| n > cap) {
        return cap.saturating_add(1);
    }
    let mut count = Count { n: 0, cap };
    let _ = std::fmt::write(&mut count, format_args!("{value}"));
    count.n
}

/// The size of `value` for the work budget: its printed length up to `cap`, refused when a
/// sequence or mapping inside it has more than [`MAX_ITEMS`] items.
fn value_size(value: &Value, cap: usize) -> Result<usize, Error> {
    if let Some(s) = value.as_str() {
        return Ok(s.len());
    }
    if value.len().is_some_and(|n| n > MAX_ITEMS) {
        return Err(budget_error(
            Budget::Work,
            format!("a sequence of over {MAX_ITEMS} items"),
        ));
    }
    Ok(display_len(value, cap))
}

/// The built-in filters that walk a sequence or build a string, each wrapped by [`guarded`].
fn guard_filters(env: &mut Environment<'_>, limits: Limits) {
    use minijinja::filters as f;
    let filters: [(&str, Value); 32] = [
        ("join", Value::from_function(f::join)),
        ("sum", Value::from_function(f::sum)),
        ("list", Value::from_function(f::list)),
        ("sort", Value::from_function(f::sort)),
        ("unique", Value::from_function(f::unique)),
        ("reverse", Value::from_function(f::reverse)),
        ("max", Value::from_function(f::max)),
        ("min", Value::from_function(f::min)),
        ("last", Value::from_function(f::last)),
        ("map", Value::from_function(f::map)),
        ("select", Value::from_function(f::select)),
        ("reject", Value::from_function(f::reject)),
        ("selectattr", Value::from_function(f::selectattr)),
        ("rejectattr", Value::from_function(f::rejectattr)),
        ("batch", Value::from_function(f::batch)),
        ("slice", Value::from_function(f::slice)),
        ("groupby", Value::from_function(f::groupby)),
        ("items", Value::from_function(f::items)),
        ("dictsort", Value::from_function(f::dictsort)),
        ("tojson", Value::from_function(f::tojson)),
        ("string", Value::from_function(f::string)),
        ("pprint", Value::from_function(f::pprint)),
        ("chain", Value::from_function(f::chain)),
        ("zip", Value::from_function(f::zip)),
        ("lines", Value::from_function(f::lines)),
        ("split", Value::from_function(f::split)),
        ("replace", Value::from_function(f::replace)),
        ("indent", Value::from_function(f::indent)),
        ("format", Value::from_function(f::format)),
        ("upper", Value::from_function(f::upper)),
        ("lower", Value::from_function(f::lower)),
        ("title", Value::from_function(f::title)),
    ];
    for (name, inner) in filters {
        let name: &'static str = name;
        env.add_filter(name, move |state: &State, args: Rest<Value>| {
            guarded(name, &inner, state, &args, limits)
        });
    }
    // Aliases of the guarded ones.
    env.add_filter("json", move |state: &State, args: Rest<Value>| {
        guarded(
            "tojson",
            &Value::from_function(f::tojson),
            state,
            &args,
            limits,
        )
    });
}

/// Calls the built-in filter `inner` after checking its inputs, and charges what it reads and
/// builds to the render's work budget.
fn guarded(
    name: &str,
    inner: &Value,
    state: &State,
    args: &[Value],
    limits: Limits,
) -> Result<Value, Error> {
    let counters = counters(state);
    let charge = |bytes: usize| -> Result<(), Error> {
        let used = counters
            .work
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        if used > limits.work {
            return Err(budget_error(
                Budget::Work,
                format!("filters of the template handle over {} bytes", limits.work),
            ));
        }
        Ok(())
    };
    let room = || {
        limits
            .work
            .saturating_sub(counters.work.load(Ordering::Relaxed))
            .min(limits.output)
    };
    let mut input = 0usize;
    for arg in args {
        let size = value_size(arg, room().saturating_add(1))?;
        if size > limits.output {
            return Err(budget_error(
                Budget::Work,
                format!("`{name}` is given a value of over {} bytes", limits.output),
            ));
        }
        input = input.saturating_add(size);
    }
    charge(input)?;
    precheck(name, args, limits)?;
    let result = inner.call(state, args)?;
    let size = value_size(&result, limits.output.saturating_add(1))?;
    if size > limits.output {
        return Err(budget_error(
            Budget::Work,
            format!("`{name}` builds a value of over {} bytes", limits.output),
        ));
    }
    charge(size)?;
    Ok(result)
}

/// Filters whose output can be much larger than their input, checked before they run.
fn precheck(name: &str, args: &[Value], limits: Limits) -> Result<(), Error> {
    let too_large = |estimate: u128| {
        if estimate > limits.output as u128 {
            Err(budget_error(
                Budget::Work,
                format!("`{name}` would build over {} bytes", limits.output),
            ))
        } else {
            Ok(())
        }
    };
    let text = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or("");
    let int = |i: usize| {
        args.get(i)
            .filter(|v| !v.is_kwargs())
            .and_then(|v| i128::try_from(v.clone()).ok())
            .unwrap_or(0)
            .max(0) as u128
    };
    match name {
        "replace" => {
            let (s, from, to) = (text(0), text(1), text(2));
            let hits = if from.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(from).count()
            };
            too_large(s.len() as u128 + hits as u128 * to.len() as u128)
        }
        "indent" => {
            let s = text(0);
            too_large(s.len() as u128 + (s.lines().count() as u128 + 1) * int(1))
        }
        "join" => {
            let items = args.first().and_then(Value::len).unwrap_or(0) as u128;
            too_large(items * text(1).len() as u128)
        }
        "batch" | "slice" => too_large(int(1)),
        "format" => {
            // `%999999999d`: a width or precision that prints more than the budget.
            let widest = text(0)
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|d| d.parse::<u128>().ok())
                .max()
                .unwrap_or(0);
            too_large(widest)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str) -> Result<String, Error> {
        let env = environment(VALUES, &[source]);
        render_str(
            &env,
            source,
            minijinja::context! { xs => vec![1, 2, 3] },
            VALUES,
        )
    }

    #[test]
    fn ordinary_templates_render() {
        assert_eq!(
            render("{{ xs|join(',') }} {{ 'a-b'|replace('-', '.') }} {{ xs|sum }} {{ [3,1]|sort|list }}").unwrap(),
            "1,2,3 a.b 6 [1, 3]"
        );
        assert_eq!(
            render("{{ {'a': 1}|tojson }} {{ 'x'|indent(2) }} {{ '%05d'|format(7) }} {{ xs|map('string')|join }}")
                .unwrap(),
            "{\"a\":1} x 00007 123"
        );
        assert_eq!(
            render(
                "{{ [{'a': 1}, {'a': 2}]|map(attribute='a')|join('-') }} {{ [1]|tojson(indent=1) }}"
            )
            .unwrap(),
            "1-2 [\n 1\n]"
        );
        assert!(render("{{ xs|join(nope=1) }}").is_err());
        assert_eq!(longest_literal("{{{{a}}bc{%"), 2);
    }

    #[test]
    fn hostile_templates_end_with_a_budget_error() {
        let cases = [
            (
                "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
                Budget::Instructions,
            ),
            (
                "{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}",
                Budget::Output,
            ),
            (
                "{% set s %}{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}{% endset %}",
                Budget::Output,
            ),
            ("{{ ([1] * 100000000000)|sum }}", Budget::Work),
            ("{{ ([1] * 100000000000)|join(',') }}", Budget::Work),
            ("{{ [1] * 100000000000 }}", Budget::Output),
            (
                "{{ ('x' * 10000)|replace('x', 'y' * 100000) }}",
                Budget::Work,
            ),
            ("{{ ('x\n' * 100000)|indent(100000) }}", Budget::Work),
            ("{{ '%999999999d'|format(1) }}", Budget::Work),
            ("{{ [1]|batch(1000000000000) }}", Budget::Work),
            (
                "{% for i in range(100000) %}{% set x = ('x' * 1000000)|upper %}{% endfor %}",
                Budget::Work,
            ),
        ];
        for (source, budget) in cases {
            let start = std::time::Instant::now();
            let e = render(source).expect_err(source);
            assert_eq!(exceeded(&e), Some(budget), "{source}: {e:?}");
            assert!(e.line().is_some(), "{source}: no line in {e:?}");
            assert!(start.elapsed().as_secs() < 20, "{source}");
        }
    }

    #[test]
    fn long_literals_cut_the_instruction_budget() {
        let literal = "y".repeat(64 << 10);
        let source = format!("{{% for i in range(100000) %}}{literal}{{% endfor %}}");
        assert_eq!(fuel_for(VALUES, &[&source]), 1_024);
        assert_eq!(fuel_for(VALUES, &["a: {{ release }}"]), VALUES.fuel);
        let e = render(&source).unwrap_err();
        assert_eq!(exceeded(&e), Some(Budget::Instructions));
    }
}
